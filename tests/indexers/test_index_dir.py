import json

import pytest

from indexers.errors import IndexFormatError
from indexers.index_dir import (
    FORMAT_VERSION,
    MANIFEST,
    Manifest,
    commit_staging,
    read_manifest,
    staging_dir,
    verify_index,
    write_manifest,
)


def _make(root, payload=b"abc"):
    stage = staging_dir(root)
    (stage / "sub").mkdir()
    (stage / "sub" / "a.bin").write_bytes(payload)
    write_manifest(stage, Manifest(n_docs=1, n_passages=1, corpus_fingerprint="f", stores=["bm25"], params={}))
    commit_staging(stage, root)


def test_round_trip_lists_every_file_with_checksum(tmp_path):
    root = tmp_path / "ix"
    _make(root)
    m = verify_index(root)
    assert m.version == FORMAT_VERSION and set(m.files) == {"sub/a.bin"}
    assert m.files["sub/a.bin"]["bytes"] == 3
    assert not root.with_name("ix.incomplete").exists()


def test_corrupt_file_is_detected(tmp_path):
    root = tmp_path / "ix"
    _make(root)
    (root / "sub" / "a.bin").write_bytes(b"abd")  # same size, other content
    with pytest.raises(IndexFormatError, match="checksum.*adarag index"):
        verify_index(root)


def test_missing_file_and_missing_manifest(tmp_path):
    root = tmp_path / "ix"
    _make(root)
    (root / "sub" / "a.bin").unlink()
    with pytest.raises(IndexFormatError, match="missing sub/a.bin"):
        verify_index(root)
    (root / MANIFEST).unlink()
    with pytest.raises(IndexFormatError, match="no manifest.json"):
        read_manifest(root)
    with pytest.raises(IndexFormatError, match="no index at"):
        read_manifest(tmp_path / "nothing")


def test_old_or_foreign_format_is_refused_with_the_fix(tmp_path):
    root = tmp_path / "ix"
    _make(root)
    raw = json.loads((root / MANIFEST).read_text())
    raw["version"] = FORMAT_VERSION + 1
    (root / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(IndexFormatError, match=rf"format {FORMAT_VERSION + 1}.*adarag index CORPUS --out"):
        read_manifest(root)
    (root / MANIFEST).write_text("{not json")
    with pytest.raises(IndexFormatError, match="corrupt"):
        read_manifest(root)
    (root / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(IndexFormatError, match="not an adarag-index"):
        read_manifest(root)


def test_interrupted_build_leaves_previous_index_valid(tmp_path):
    root = tmp_path / "ix"
    _make(root, b"old")
    stage = staging_dir(root)  # a new build starts ...
    (stage / "half").write_bytes(b"x")  # ... and dies before its manifest and swap
    assert verify_index(root).files["sub/a.bin"]["bytes"] == 3
    assert (root / "sub" / "a.bin").read_bytes() == b"old"
    with pytest.raises(IndexFormatError):  # the leftover never loads as an index
        read_manifest(stage)
    _make(root, b"new!")  # the next build cleans the leftover up and replaces the index
    assert (root / "sub" / "a.bin").read_bytes() == b"new!"
    assert not stage.exists() and not root.with_name("ix.previous").exists()
