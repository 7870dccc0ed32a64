"""The index directory format: segments and generations published by an atomic manifest replace, a
self-checksummed manifest, and the artifacts' staging swap."""
import hashlib
import json
import shutil

import pytest
import xxhash

from indexers.errors import IndexFormatError
from indexers.artifact import manifest_checksum
from indexers.index_dir import (
    FORMAT_VERSION,
    clean_leftovers,
    MANIFEST,
    Manifest,
    data_dir,
    index_state,
    manifest_stamp,
    new_stage,
    publish_segments,
    read_manifest,
    recover_swap,
    verify_index,
)

_ZERO = "0" * 32


def _make(root, payload=b"abc"):
    """Publish one generation: a one-row segment holding the row maps plus bm25/a.bin = payload."""
    root.mkdir(exist_ok=True)
    old = read_manifest(root) if (root / MANIFEST).exists() else None
    gen = (old.generation if old is not None else 0) + 1
    stage = new_stage(root)
    seg, state = stage / "seg", stage / "gen"
    (seg / "bm25").mkdir(parents=True)
    state.mkdir()
    (seg / "bm25" / "a.bin").write_bytes(payload)
    for name in ("ids.npy", "passage_hashes.npy"):
        (seg / name).write_bytes(b"")
    name = f"seg-{gen:06d}-000"
    m = Manifest(n_docs=1, n_passages=1, corpus_fingerprint="", stores=["bm25"], params={}, generation=gen,
                 data=f"gen-{gen:06d}", previous=old.data if old is not None else "", sql="docs-000001.sqlite",
                 segments=[{"name": name, "n_rows": 1, "deleted": "", "n_deleted": 0}])
    done = publish_segments(root, [(seg, name), (state, f"gen-{gen:06d}")], m, old)
    shutil.rmtree(stage)
    return done


def _a(root, m):
    """bm25/a.bin of the manifest's (only) segment."""
    return root / m.segments[0]["name"] / "bm25" / "a.bin"


def _sign(root, raw):
    raw["checksum"] = manifest_checksum(raw)
    (root / MANIFEST).write_text(json.dumps(raw))


def test_publish_lists_every_file_with_checksum_in_a_new_generation(tmp_path):
    root = tmp_path / "ix"
    m = _make(root)
    assert m.version == FORMAT_VERSION and m.generation == 1 and m.data == "gen-000001" and m.previous == ""
    assert verify_index(root) == m
    assert m.files["seg-000001-000/bm25/a.bin"] == {"xxh3_128": xxhash.xxh3_128_hexdigest(b"abc"), "bytes": 3}
    assert _a(root, m).read_bytes() == b"abc" and data_dir(root, m) == root
    assert sorted(p.name for p in root.iterdir()) == ["gen-000001", MANIFEST, "seg-000001-000"]


def test_second_publish_keeps_the_previous_generation_and_drops_older_ones(tmp_path):
    root = tmp_path / "ix"
    _make(root, b"one")
    stamp = manifest_stamp(root)
    m2 = _make(root, b"two")
    assert manifest_stamp(root) != stamp  # readers notice with one stat
    assert m2.generation == 2 and m2.previous == "gen-000001" and (root / "seg-000001-000").is_dir()
    m3 = _make(root, b"three")
    assert m3.previous == "gen-000002" and not (root / "seg-000001-000").exists()
    assert not (root / "gen-000001").exists() and (root / "gen-000002").exists()
    assert _a(root, verify_index(root)).read_bytes() == b"three"


def test_corrupt_or_missing_data_file_is_detected(tmp_path):
    root = tmp_path / "ix"
    m = _make(root)
    _a(root, m).write_bytes(b"abd")  # same size, other content
    with pytest.raises(IndexFormatError, match="checksum.*adarag index"):
        verify_index(root)
    _a(root, m).unlink()
    with pytest.raises(IndexFormatError, match="missing seg-000001-000/bm25/a.bin"):
        verify_index(root)


def _count_hashes(monkeypatch):
    import indexers.index_dir as index_dir

    calls = []
    real = index_dir.hash_file
    monkeypatch.setattr(index_dir, "hash_file", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    return calls


def test_reopen_reads_no_unchanged_file_but_any_write_is_caught(tmp_path, monkeypatch):
    """Issue #17: the stat cache spares a reopen the hashing; a byte flipped later (same size) is still refused."""
    import time

    import indexers.index_dir as index_dir

    root = tmp_path / "ix"
    m = _make(root)  # just written: the writer caches nothing
    monkeypatch.setattr(index_dir, "_RACY_S", -1.0)  # files are seconds old in real use; here they are new
    calls = _count_hashes(monkeypatch)
    verify_index(root)
    n_files = len(calls)
    assert n_files == len(m.files) and (root / index_dir.VERIFIED).is_file()
    verify_index(root)
    assert len(calls) == n_files  # nothing read again
    verify_index(root, full=True)
    assert len(calls) == 2 * n_files  # `adarag check` reads every byte whatever the cache says
    time.sleep(0.05)  # past the file system's timestamp tick
    with open(_a(root, m), "r+b") as f:
        f.write(b"x")  # same size, other content
    with pytest.raises(IndexFormatError, match="checksum"):
        verify_index(root)
    (root / index_dir.VERIFIED).write_text("{not json")
    _a(root, m).write_bytes(b"abc")
    assert verify_index(root) == m  # an unreadable cache is only a cache: everything is hashed again


def test_a_publish_caches_the_files_it_hashed_once_they_are_old(tmp_path, monkeypatch):
    """A build's segments were written minutes before it publishes: the writer's own hashing fills the cache,
    so the first open does not read them again; a later byte flip is still refused."""
    import time

    import indexers.index_dir as index_dir

    monkeypatch.setattr(index_dir, "_RACY_S", -1.0)
    root = tmp_path / "ix"
    m = _make(root)
    calls = _count_hashes(monkeypatch)
    verify_index(root)
    assert calls == []
    time.sleep(0.05)
    _a(root, m).write_bytes(b"abd")
    with pytest.raises(IndexFormatError, match="checksum"):
        verify_index(root)
    m2 = _make(root, b"two")  # the next publish drops entries of files it no longer lists
    assert set(json.loads((root / index_dir.VERIFIED).read_text())) == set(m2.files)


def test_files_written_just_now_are_never_cached(tmp_path, monkeypatch):
    """A rewrite in the same timestamp tick as the cached stat would keep it: fresh files are hashed each time."""
    root = tmp_path / "ix"
    _make(root)
    calls = _count_hashes(monkeypatch)
    verify_index(root)
    verify_index(root)
    assert len(calls) == 2 * len(read_manifest(root).files)


def test_missing_manifest_never_suggests_overwriting(tmp_path):
    root = tmp_path / "ix"
    _make(root)
    (root / MANIFEST).unlink()
    with pytest.raises(IndexFormatError, match="no manifest.json") as e:
        read_manifest(root)
    assert "--rebuild" not in str(e.value) and "NEW_FOLDER" in str(e.value)
    with pytest.raises(IndexFormatError, match="no index at"):
        read_manifest(tmp_path / "nothing")


def test_manifest_edits_break_its_own_checksum(tmp_path):
    root = tmp_path / "ix"
    _make(root)
    raw = json.loads((root / MANIFEST).read_text())
    raw["files"] = {}  # the attack of the issue: no files listed, no checksum checked
    (root / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(IndexFormatError, match="does not match its own checksum"):
        read_manifest(root)


@pytest.mark.parametrize("edit, match", [
    (lambda r: r.update(files={}), "lists no file"),
    (lambda r: r["files"].update({"../outside": {"xxh3_128": _ZERO, "bytes": 1}}), "bad file entry"),
    (lambda r: r["files"].update({"/etc/passwd": {"xxh3_128": _ZERO, "bytes": 1}}), "bad file entry"),
    (lambda r: r["files"].update({"x": {"xxh3_128": "nothex", "bytes": 1}}), "bad file entry"),
    (lambda r: r["files"].update({"x": {"xxh3_128": _ZERO, "bytes": -1}}), "bad file entry"),
    (lambda r: r["files"].update({"x": {"sha256": "0" * 64, "bytes": 1}}), "bad file entry"),  # format 1's key
    (lambda r: r.update(n_docs="7"), "wrong type"),
    (lambda r: r.update(n_docs=True), "wrong type"),
    (lambda r: r.update(n_docs=-1), "negative"),
    (lambda r: r.pop("params"), "missing"),
    (lambda r: r.update(surprise=1), "unexpected field"),
    (lambda r: r.update(data="gen-000009"), "does not match generation"),
    (lambda r: r.update(data="../../etc"), "does not match generation"),
    (lambda r: r.update(previous="x/y"), "bad previous generation"),
    (lambda r: r.update(sql="../docs.sqlite"), "bad document store file"),
    (lambda r: r["segments"][0].update(name="../seg"), "bad segment entry"),
    (lambda r: r["segments"][0].update(n_deleted=2), "bad segment entry"),
    (lambda r: r["segments"][0].update(n_deleted=1), "bad segment entry"),  # deleted rows but no folder
    (lambda r: r["segments"].append(dict(r["segments"][0])), "bad segment entry"),  # listed twice
    (lambda r: r.update(n_passages=2), "live rows"),
    (lambda r: r["files"].pop("seg-000001-000/ids.npy"), "lists no file"),
])
def test_a_signed_but_malformed_manifest_is_refused_by_shape(tmp_path, edit, match):
    """Even a manifest whose checksum was recomputed (an edit by hand, a bug) is checked field by field."""
    root = tmp_path / "ix"
    _make(root)
    raw = json.loads((root / MANIFEST).read_text())
    edit(raw)
    _sign(root, raw)
    with pytest.raises(IndexFormatError, match=match):
        read_manifest(root)


def test_every_single_byte_flip_of_the_manifest_is_refused_or_harmless(tmp_path):
    """The issue's fuzz: 231 of 3,808 flips gave a KeyError traceback, 7 silently changed parameters."""
    root = tmp_path / "ix"
    good = _make(root)
    raw = (root / MANIFEST).read_bytes()
    step = max(1, len(raw) // 600)  # ~600 positions x 2 flips keeps the test under a second
    for i in range(0, len(raw), step):
        for bit in (0x01, 0x20):
            b = bytearray(raw)
            b[i] ^= bit
            (root / MANIFEST).write_bytes(bytes(b))
            try:
                got = read_manifest(root)
            except IndexFormatError:
                continue
            assert got == good, f"flip at byte {i} changed the manifest silently"


def test_newer_format_says_upgrade_and_foreign_or_corrupt_json_is_refused(tmp_path):
    root = tmp_path / "ix"
    _make(root)
    raw = json.loads((root / MANIFEST).read_text())
    raw["version"] = FORMAT_VERSION + 1
    _sign(root, raw)
    with pytest.raises(IndexFormatError, match=rf"format {FORMAT_VERSION + 1}.*upgrade adarag") as e:
        read_manifest(root)
    assert "rebuild" not in str(e.value)
    (root / MANIFEST).write_text("{not json")
    with pytest.raises(IndexFormatError, match="corrupt"):
        read_manifest(root)
    (root / MANIFEST).write_text("[" * 100_000)
    with pytest.raises(IndexFormatError, match="corrupt"):
        read_manifest(root)
    (root / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(IndexFormatError, match="not an adarag-index"):
        read_manifest(root)


def test_format_1_manifest_without_checksum_still_reads(tmp_path):
    root = tmp_path / "ix"
    root.mkdir()
    (root / "bm25").mkdir()
    (root / "bm25" / "a.bin").write_bytes(b"abc")
    raw = {"n_docs": 1, "n_passages": 1, "corpus_fingerprint": "f", "stores": ["bm25"], "params": {},
           "files": {"bm25/a.bin": {"sha256": hashlib.sha256(b"abc").hexdigest(), "bytes": 3}},
           "format": "adarag-index", "version": 1, "adarag_version": "0.1.0", "created": 0.0}
    (root / MANIFEST).write_text(json.dumps(raw))
    m = verify_index(root)
    assert m.version == 1 and data_dir(root, m) == root
    m2 = _make(root, b"new")  # the next write moves it to format 3 and removes the format-1 files
    assert m2.version == FORMAT_VERSION and not (root / "bm25").exists()
    assert _a(root, m2).read_bytes() == b"new"


def test_a_writer_killed_before_publishing_leaves_the_generation_and_is_cleaned(tmp_path):
    root = tmp_path / "ix"
    _make(root, b"old")
    stage = new_stage(root)  # a new write starts ...
    (stage / "half").write_bytes(b"x")  # ... and dies before publishing
    (root / "seg-000002-000").mkdir()  # or dies between the renames and the manifest replace
    (root / "seg-000001-000" / "del-000002").mkdir()
    (root / "docs-000002.sqlite").write_bytes(b"")
    (root / f"{MANIFEST}.tmp-1-ab").write_text("{")
    m = verify_index(root)
    assert m.generation == 1 and _a(root, m).read_bytes() == b"old"
    assert index_state(root) == "index"
    clean_leftovers(root, m)  # what the next writer does first
    assert sorted(p.name for p in root.iterdir()) == ["gen-000001", MANIFEST, "seg-000001-000"]
    assert sorted(p.name for p in (root / "seg-000001-000").iterdir()) == ["bm25", "ids.npy", "passage_hashes.npy"]
    m2 = _make(root, b"new")
    assert m2.generation == 2 and _a(root, m2).read_bytes() == b"new"


def test_index_state_tells_indexes_from_other_folders(tmp_path):
    assert index_state(tmp_path / "none") == "absent"
    (tmp_path / "empty").mkdir()
    assert index_state(tmp_path / "empty") == "empty"
    (tmp_path / "empty" / "write.lock").write_text("")
    assert index_state(tmp_path / "empty") == "empty"  # adarag's own leftovers only
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.txt").write_text("precious")
    assert index_state(tmp_path / "thesis") == "foreign"
    (tmp_path / "f").write_text("x")
    assert index_state(tmp_path / "f") == "foreign"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / MANIFEST).write_text('{"format": "npm"}')
    assert index_state(tmp_path / "other") == "foreign"
    _make(tmp_path / "ix")
    assert index_state(tmp_path / "ix") == "index"


def test_recover_swap_restores_a_missing_index_from_previous_and_never_deletes(tmp_path):
    """The issue's repro 3: `mv INDEX INDEX.previous` then a command must restore it, not build over it."""
    root = tmp_path / "ix"
    _make(root, b"keep")
    root.rename(tmp_path / "ix.previous")
    recover_swap(root)
    assert _a(root, verify_index(root)).read_bytes() == b"keep"
    assert not (tmp_path / "ix.previous").exists()
    # a corrupt .previous is left where it is, for the user, and nothing is created
    _make(tmp_path / "iy")
    (tmp_path / "iy" / MANIFEST).write_text("{")
    (tmp_path / "iy").rename(tmp_path / "iy.previous")
    recover_swap(tmp_path / "iy")
    assert not (tmp_path / "iy").exists() and (tmp_path / "iy.previous" / MANIFEST).exists()
    with pytest.raises(IndexFormatError, match="previous index was kept at"):
        read_manifest(tmp_path / "iy")
