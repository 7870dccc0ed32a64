"""One entry point from a controller name to a Controller: a fixed mode, the shipped bandit or probe, or a
policy directory (its kind read from the manifest)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from indexers.errors import ConfigError, IndexFormatError
from rag.control.bandit import BanditController, load_policy
from rag.control.base import Controller
from rag.control.classifier import ClassifierController, load_classifier
from rag.control.probe import ProbeController, load_probe
from rag.modes import MODE_NAMES

__all__ = ["DEFAULT_POLICY", "DEFAULT_PROBE", "check_controller_spec", "load_controller", "policy_kind"]

DEFAULT_PROBE = Path(__file__).parent / "policies" / "probe"
DEFAULT_POLICY = Path(__file__).parent / "policies" / "default"


def check_controller_spec(spec: object) -> str:
    """`spec` if `load_controller` can read it: auto, bandit, probe, a mode name or a policy directory (its
    manifest read, its files verified only at load); else a ConfigError (IndexFormatError for a folder that holds no
    policy) saying what to pass. Cheap: nothing is loaded."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"controller must be a non-empty str (auto, bandit, probe, a mode name or a policy "
                          f"directory), got {spec!r}")
    if spec in MODE_NAMES or spec in ("auto", "bandit", "probe"):
        return spec
    if Path(spec).is_dir():
        policy_kind(spec)
        return spec
    raise ConfigError(f"unknown controller {spec!r}: use auto, bandit, a mode ({', '.join(MODE_NAMES)}), probe or a "
                      "policy directory written by `adarag controller train`")


def load_controller(spec: str, *, rag: Any) -> Controller:
    """spec: a mode name (fixed), "bandit" / "probe" (the shipped policies) or a policy directory path (its
    kind in the manifest: linucb, thompson, probe or classifier)."""
    check_controller_spec(spec)
    if spec in MODE_NAMES:
        return BanditController(None, rag, fixed=spec)
    if spec in ("bandit", "auto"):
        return BanditController(load_policy(DEFAULT_POLICY), rag)
    if spec == "probe":
        return ProbeController(load_probe(DEFAULT_PROBE), rag)
    kind = policy_kind(spec)
    if kind == "probe":
        return ProbeController(load_probe(spec), rag)
    if kind == "classifier":
        return ClassifierController(load_classifier(spec), rag)
    return BanditController(load_policy(spec), rag)


def policy_kind(path: str | Path) -> str:
    """The kind a policy directory's manifest names (linucb, thompson, probe), without verifying its files."""
    try:
        return str(json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8")).get("kind"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path} is not a policy directory ({e}): train one with `adarag controller "
                               "train --cache CACHE --out POLICY`") from e
