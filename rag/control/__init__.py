"""Deciding how much to search per question: the Controller protocol and its Decision (base), the MBA-RAG bandit
(bandit, over features), the Probing-RAG probe (probe), the loader from a name or policy folder (load) and the
offline learning of both from a collect cache (train; inference never imports it)."""
from rag.control.base import DEFAULT_LAM, Controller, Decision, check_mode, correct, reward
from rag.control.load import DEFAULT_POLICY, DEFAULT_PROBE, check_controller_spec, load_controller, policy_kind

__all__ = ["DEFAULT_LAM", "DEFAULT_POLICY", "DEFAULT_PROBE", "Controller", "Decision", "check_controller_spec",
           "check_mode", "correct", "load_controller", "policy_kind", "reward"]
