"""Where the shared data lives: `ADARAG_SHARED`, else `shared/` beside the checkout, else the workplace's
folder. The one place tests, benchmarks and evaluation look it up; reports record paths relative to it."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_dir", "shared_data", "portable_path"]


WORKPLACE_SHARED = Path("/work/shared")
"""Where this project's workplace keeps the shared folder: found by a checkout cloned elsewhere (CI's fresh
clone, a temporary folder) that has no shared/ beside it."""


def shared_dir() -> Path:
    """The folder holding `data/` (HotpotQA, 2Wiki, MuSiQue, ... with their corpora): ADARAG_SHARED, else
    shared/ beside the checkout, else the workplace's folder if it exists (else shared/ beside the checkout)."""
    env = os.environ.get("ADARAG_SHARED")
    if env:
        return Path(env).expanduser()
    beside = Path(__file__).resolve().parents[2] / "shared"
    return WORKPLACE_SHARED if not beside.exists() and WORKPLACE_SHARED.exists() else beside


def shared_data(name: str) -> Path:
    """`shared/data/<name>`, e.g. shared_data("hotpotqa")."""
    return shared_dir() / "data" / name


def portable_path(path: str | Path) -> str:
    """A path as a report records it: `${SHARED}/...` inside the shared folder, relative inside the repository,
    else as given, so a committed report names no machine's folders."""
    p = Path(path).expanduser()
    try:
        ap = p.resolve()
    except OSError:
        return str(path)
    for root, name in ((shared_dir().resolve(), "${SHARED}"), (Path(__file__).resolve().parents[1], "")):
        if ap == root or root in ap.parents:
            rel = ap.relative_to(root).as_posix()
            return f"{name}/{rel}" if name else rel or "."
    return str(path)
