"""indexers.artifact: publish is all-or-nothing, open_verified trusts nothing, a killed commit heals."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from indexers.artifact import MANIFEST, commit, manifest_checksum, open_verified, publish, seal, stage
from indexers.errors import ArtifactError, IndexFormatError, ModelError

FMT, FIX = "adarag-test", "rebuild it"


def _publish(dest, payload: bytes = b"abc", **body):
    with publish(dest, FMT, 1) as (st, b):
        (st / "sub").mkdir()
        (st / "sub" / "w.bin").write_bytes(payload)
        b.update(body)
    return dest


def test_publish_then_open_verified_round_trip(tmp_path):
    dest = _publish(tmp_path / "a", note="x")
    m = open_verified(dest, FMT, (1,), fix=FIX)
    assert m["note"] == "x" and m["files"] == {"sub/w.bin": {"size": 3, "sha256": m["files"]["sub/w.bin"]["sha256"]}}
    assert m["checksum"] == manifest_checksum(m) and sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_failed_publish_keeps_the_old_version_and_leaves_no_stage(tmp_path):
    dest = _publish(tmp_path / "a", payload=b"old")
    with pytest.raises(RuntimeError):
        with publish(dest, FMT, 1) as (st, _):
            (st / "sub").mkdir()
            (st / "sub" / "w.bin").write_bytes(b"new")
            raise RuntimeError("killed mid-write")
    assert (dest / "sub" / "w.bin").read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    _publish(dest, payload=b"new")  # the same format: replaced
    assert (dest / "sub" / "w.bin").read_bytes() == b"new"


def test_publish_refuses_to_replace_a_folder_that_is_not_its_artifact(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ArtifactError, match="not a adarag-test folder"):
        _publish(mine)
    assert (mine / "thesis.tex").read_text() == "years of work"
    (tmp_path / "empty").mkdir()
    _publish(tmp_path / "empty")  # an empty folder is fine


@pytest.mark.parametrize("damage, match", [
    (lambda d: (d / "sub" / "w.bin").write_bytes(b"abd"), "checksum"),  # same size, other bytes
    (lambda d: (d / "sub" / "w.bin").write_bytes(b"ab"), "bytes"),
    (lambda d: (d / "sub" / "w.bin").unlink(), "missing"),
    (lambda d: (d / MANIFEST).write_text((d / MANIFEST).read_text().replace('"note": "x"', '"note": "y"')),
     "checksum"),
    (lambda d: (d / MANIFEST).write_text("{trunc"), "unreadable"),
    (lambda d: (d / MANIFEST).unlink(), "holds no manifest.json"),
])
def test_open_verified_refuses_damage_and_says_what_to_do(tmp_path, damage, match):
    dest = _publish(tmp_path / "a", note="x")
    damage(dest)
    with pytest.raises(ArtifactError, match=match) as e:
        open_verified(dest, FMT, (1,), fix=FIX)
    assert str(e.value).endswith(FIX) and isinstance(e.value, IndexFormatError) and isinstance(e.value, ModelError)


def test_format_version_and_unsafe_paths_are_refused(tmp_path):
    dest = _publish(tmp_path / "a")
    with pytest.raises(ArtifactError, match="not other"):
        open_verified(dest, "other", (1,), fix=FIX)
    with pytest.raises(ArtifactError, match="version 1, this adarag reads 2"):
        open_verified(dest, FMT, (2,), fix=FIX)
    m = json.loads((dest / MANIFEST).read_text())
    m["files"] = {"../outside": {"size": 0}}
    m["checksum"] = manifest_checksum(m)
    (dest / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="missing"):
        open_verified(dest, FMT, (1,), fix=FIX)


def test_legacy_bare_digest_manifests_still_verify(tmp_path):
    dest = _publish(tmp_path / "a")
    m = json.loads((dest / MANIFEST).read_text())
    legacy = {"format": FMT, "version": 1, "files": {"sub/w.bin": m["files"]["sub/w.bin"]["sha256"]}}
    (dest / MANIFEST).write_text(json.dumps(legacy))
    assert open_verified(dest, FMT, (1,), fix=FIX)["files"] == legacy["files"]
    (dest / "sub" / "w.bin").write_bytes(b"xyz")
    with pytest.raises(ArtifactError, match="checksum"):
        open_verified(dest, FMT, (1,), fix=FIX)


def test_a_commit_killed_between_its_moves_heals_on_the_next_open(tmp_path):
    dest = _publish(tmp_path / "a", note="old")
    os.replace(dest, tmp_path / "a.previous-deadbeef")  # the first move done, the second never happened
    assert open_verified(dest, FMT, (1,), fix=FIX)["note"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_dead_writers_stage_is_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f"a.incomplete-{int(dead.stdout)}-0000"
    leftover.mkdir()
    live = tmp_path / f"a.incomplete-{os.getppid()}-1111"  # our parent is alive
    live.mkdir()
    st = stage(tmp_path / "a")
    assert not leftover.exists() and live.exists() and st.exists()
    (st / "f").write_text("1")
    seal(st, FMT, 1, {})
    commit(st, tmp_path / "a")
    assert open_verified(tmp_path / "a", FMT, (1,), fix=FIX)["files"]["f"]["size"] == 1


def test_staging_is_unique_per_writer_and_the_last_commit_wins(tmp_path):
    root = tmp_path / "model"
    a, b = stage(root), stage(root)
    assert a != b and a.name.startswith("model.incomplete-")
    (a / "w").write_bytes(b"1")
    commit(a, root)
    (b / "w").write_bytes(b"2")
    commit(b, root)
    assert (root / "w").read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
