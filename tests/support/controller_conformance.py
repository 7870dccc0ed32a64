"""ControllerConformance: what every Controller (rag.control.base) must do; each kind's tests subclass it and
provide a `controller` fixture and a `question` fixture."""
from __future__ import annotations

import pytest

from indexers.errors import ConfigError
from rag.modes import MODE_NAMES
from rag.control.base import Budget, Controller, reward


class ControllerConformance:
    def test_is_a_controller_with_a_reward_cost(self, controller) -> None:
        assert isinstance(controller, Controller)
        assert 0 <= controller.lam < 1  # a correct answer with one retrieval still beats a wrong one
        assert reward(True, 1, lam=controller.lam) > reward(False, 0, lam=controller.lam)

    def test_choice_is_a_mode_with_a_propensity(self, controller, question) -> None:
        d = controller.choose(question)
        assert d.mode in MODE_NAMES and 0 < d.propensity <= 1
        assert all(isinstance(v, float) for v in d.scores.values())
        assert controller.choose(question) == d  # no exploration here: the same question, the same decision

    def test_feedback_takes_known_modes_only(self, controller, question) -> None:
        controller.update(question, controller.choose(question).mode, 1.0)
        with pytest.raises(ConfigError, match="unknown mode"):
            controller.update(question, "bogus", 1.0)

    def test_no_draft_never_stops_retrieval(self, controller, question) -> None:
        assert controller.should_stop(question, "") is False
        assert controller.should_stop(question, "   ") is False

    def test_a_budget_is_kept_and_a_loose_one_changes_nothing(self, controller, question) -> None:
        assert controller.choose(question, Budget(retrieval_calls=0)).mode == "none"
        assert controller.choose(question, Budget(retrieval_calls=100, seconds=3600)).mode == \
            controller.choose(question).mode
