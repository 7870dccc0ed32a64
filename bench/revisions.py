"""The checkouts a benchmark compares: ours (this tree) and, with `--baseline REF`, another git revision in a
scratch worktree with its C kernels built, so both are measured in the same run. Imported by bench scripts."""
from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def checkouts(baseline: str | None, scratch: Path) -> Iterator[dict[str, Path]]:
    """{"baseline REF": worktree, "ours": ROOT} (just ours without a baseline); the worktree is removed after."""
    if baseline is None:
        yield {"ours": ROOT}
        return
    wt = scratch / f"baseline-{re.sub(r'[^A-Za-z0-9]', '_', baseline)}"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), baseline], check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=wt, check=True,
                       capture_output=True)
        yield {f"baseline {baseline}": wt, "ours": ROOT}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], capture_output=True)
