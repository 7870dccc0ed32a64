"""`check_index` / `adarag check`: what opening verifies, plus the row map against the document store."""
import json

import numpy as np
import pytest

from indexers.check import check_index
from indexers.errors import IndexFormatError
from indexers.index import BuildParams, build_index, open_index
from indexers.artifact import manifest_checksum
from indexers.index_dir import FILE_HASH, MANIFEST, hash_file, read_manifest
from indexers.types import Document
from services.cli import main


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "ix"
    docs = [Document(id=f"d{i}", title=f"T{i}", text=f"text number {i} here") for i in range(12)]
    build_index(docs, root, BuildParams(stores=("bm25",)), progress=False)
    return root


def _seg(root):
    return root / read_manifest(root).segments[0]["name"]


def _resign(root, rel):
    """Record the current content of `rel` in the manifest, as a buggy writer would: checksums all agree."""
    raw = json.loads((root / MANIFEST).read_text())
    p = root / rel
    raw["files"][rel] = {FILE_HASH: hash_file(p), "bytes": p.stat().st_size}
    raw["checksum"] = manifest_checksum(raw)
    (root / MANIFEST).write_text(json.dumps(raw))


def test_a_sound_index_checks_out(root, capsys):
    rep = check_index(root)
    assert (rep.generation, rep.n_docs, rep.n_passages) == (1, 12, 12) and rep.files >= 5 and rep.bytes > 0
    assert main(["check", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["ok"] is True and out["n_passages"] == 12


def test_a_flipped_byte_is_refused_before_anything_is_served(root, capsys):
    p = _seg(root) / "bm25" / "impacts.npy"
    b = bytearray(p.read_bytes())
    b[-1] ^= 0x01
    p.write_bytes(bytes(b))
    with pytest.raises(IndexFormatError, match=f"{p.name} does not match its checksum"):
        open_index(root)
    assert main(["check", str(root), "--json"]) == 2
    assert "does not match its checksum" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


def test_a_row_map_that_disagrees_with_the_store_is_found(root):
    seg = _seg(root)
    ids = np.load(seg / "ids.npy")
    ids[[0, 1]] = ids[[1, 0]]  # two rows swapped: every file checksum agrees after re-signing
    np.save(seg / "ids.npy", ids, allow_pickle=False)
    _resign(root, f"{seg.name}/ids.npy")
    open_index(root).close()  # opening cannot tell ...
    with pytest.raises(IndexFormatError, match=r"row 0 \(passage 'd1'\) is not what the document store holds"):
        check_index(root)  # ... the full check can


def test_stats_come_from_the_manifest(root, capsys):
    from indexers.check import index_stats

    s = index_stats(root)
    assert (s["n_docs"], s["n_passages"], s["generation"], s["stores"]) == (12, 12, 1, ["bm25"])
    assert (s["segments"], s["deleted"], s["segment_rows"]) == (1, 0, [12])
    assert set(s["bytes"]) == {"bm25", "sql", "row maps"} and s["total_bytes"] == sum(s["bytes"].values())
    build_index([], root, delete=["d3", "d4"], progress=False)
    build_index([Document(id="new", text="one more")], root, progress=False)
    s = index_stats(root)
    assert (s["n_passages"], s["segments"], s["deleted"], s["segment_rows"]) == (11, 2, 2, [12, 1])
    assert main(["stats", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_passages"] == 11 and out["segments"] == 2 and out["params"]["stores"] == ["bm25"]
