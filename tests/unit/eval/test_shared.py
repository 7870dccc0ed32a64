"""eval.shared: one place for the shared data folder, and report paths that name no machine's folders."""
from __future__ import annotations

from pathlib import Path

from eval.shared import portable_path, shared_data, shared_dir

REPO = Path(__file__).resolve().parents[3]


def test_the_shared_folder_is_the_env_var_else_beside_the_checkout_else_the_workplace_s(monkeypatch, tmp_path):
    monkeypatch.setenv("ADARAG_SHARED", str(tmp_path))
    assert shared_dir() == tmp_path and shared_data("nq") == tmp_path / "data" / "nq"
    monkeypatch.delenv("ADARAG_SHARED")
    import eval.shared as sh

    beside = REPO.parent / "shared"
    monkeypatch.setattr(sh, "WORKPLACE_SHARED", tmp_path)  # exists
    assert shared_dir() == (beside if beside.exists() else tmp_path)
    monkeypatch.setattr(sh, "WORKPLACE_SHARED", tmp_path / "absent")
    assert shared_dir() == beside  # no workplace folder: beside the checkout, where the error message points


def test_report_paths_are_portable(monkeypatch, tmp_path):
    monkeypatch.setenv("ADARAG_SHARED", str(tmp_path / "sh"))
    assert portable_path(tmp_path / "sh" / "data" / "hotpotqa") == "${SHARED}/data/hotpotqa"
    assert portable_path(REPO / "results" / "x.json") == "results/x.json"
    assert portable_path(REPO) == "."
    assert portable_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")  # outside both: kept as given


def test_no_committed_report_names_a_machine_folder():
    """Reports in results/ are shared: a path of the machine that made them (/work/..., /home/..., /root/...)
    tells a reader nothing and leaks the machine's layout."""
    bad = []
    for p in (REPO / "results").rglob("*"):
        if p.is_file() and p.suffix in {".json", ".md", ".html", ".txt", ".yaml", ".csv", ".tsv"}:
            text = p.read_text(encoding="utf-8", errors="replace")
            bad += [f"{p.relative_to(REPO)}: {m}" for m in ("/work/", "/home/", "/root/") if m in text]
    assert not bad, bad
