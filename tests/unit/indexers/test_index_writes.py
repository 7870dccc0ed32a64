"""Writes never lose data: the reproductions of issue #16 (concurrent writers, --rebuild over other files,
the swap window, kill -9 at every step of a publish, odd paths) as tests against real builds."""
import subprocess
import sys
import textwrap
import time

import pytest

from indexers.errors import ConfigError
from indexers.index import BuildParams, build_index, open_index
from indexers.index_dir import MANIFEST
from indexers.types import Document

_CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import indexers.index as ix
    import indexers.index_dir as d
    from indexers.index import BuildParams, build_index
    from indexers.types import Document

    root, prefix, n, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if mode == "slow":  # hold the lock a while before publishing, so a second writer surely overlaps
        publish = ix.publish_segments
        ix.publish_segments = lambda *a: (time.sleep(1.0), publish(*a))[1]
    elif mode == "kill-staged":  # SQL changed (undo-logged), the new segment staged, nothing renamed yet
        ix.publish_segments = die
    elif mode == "kill-renamed":  # the segment and generation folders are in place, the manifest not replaced
        replace = os.replace
        os.replace = lambda s, t: die() if str(t).endswith("manifest.json") else replace(s, t)
    elif mode == "kill-published":  # the manifest is replaced, the SQL undo log not yet dropped
        import indexers.sql_store as q
        q.SQLStore.commit_generation = die
    elif mode == "kill-cleaning":  # the manifest is replaced, unreferenced folders not yet removed
        write = d._write_manifest
        d._write_manifest = lambda *a: (write(*a), setattr(d, "_remove_unreferenced", die))
    docs = [Document(id=f"{prefix}{i}", title=f"{prefix} {i}", text=f"{prefix} passage {i} words") for i in range(n)]
    if prefix == "optimize":
        ix.optimize(root, progress=False)
    elif prefix == "delete":
        build_index([], root, delete=[f"old{i}" for i in range(5, 5 + n)], progress=False)
    else:
        build_index(docs, root, BuildParams(stores=("bm25",)), progress=False)
    print("done", flush=True)
""")


def _docs(prefix, n):
    return [Document(id=f"{prefix}{i}", title=f"{prefix} {i}", text=f"{prefix} passage {i} words") for i in range(n)]


def _build(docs, root, **kw):
    return build_index(docs, root, BuildParams(stores=("bm25",)), progress=False, **kw)


def _child(tmp_path, root, prefix, n, mode="plain"):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    return subprocess.Popen([sys.executable, str(script), str(root), prefix, str(n), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ids(root, quiet=True):
    """The documents index `root` serves. With no writer at work (`quiet`) its live rows and its document
    store must agree; a writer between its SQL commit and its publish has rows in the store the index lacks."""
    with open_index(root) as ix:
        live = {str(i) for i in ix.ids[ix.live_rows()]}
        if quiet:
            stored = {p.id for p in ix.store.iter_passages()}
            assert live == stored, (sorted(live ^ stored)[:5], len(live), len(stored))
        return {p.doc_id for p in ix.store.get_passages(sorted(live))}


def _search_ok(root):
    """Every hit of a search resolves to a stored passage (the symptom of a torn index is NotFoundError)."""
    from indexers.text import tokenize

    with open_index(root) as ix:
        rows, scores = ix.store_of("bm25").search_batch([tokenize("passage words")], 20)[0]
        return len(ix.hits(rows, scores))


def test_two_writers_at_once_both_land_and_nothing_is_lost(tmp_path):
    """Issue repro 1: two `adarag index` runs into one folder destroyed it (2 of 3 tries)."""
    root = tmp_path / "ix"
    _build(_docs("base", 50), root)
    a = _child(tmp_path, root, "a", 40, "slow")
    time.sleep(0.5)
    b = _child(tmp_path, root, "b", 40, "slow")
    for p in (a, b):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _ids(root) == {f"base{i}" for i in range(50)} | {f"a{i}" for i in range(40)} | {f"b{i}" for i in range(40)}
    assert _search_ok(root) == 20


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_folder_that_is_not_an_index_is_never_written_over(tmp_path, rebuild):
    """Issue repro 2: `--rebuild` deleted whatever --out held."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "thesis.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not empty and not an adarag index") as e:
        _build(_docs("x", 3), d, rebuild=rebuild)
    assert "--rebuild" not in str(e.value)
    assert sorted(p.name for p in d.iterdir()) == ["thesis.txt"] and (d / "thesis.txt").read_text() == "precious"


def test_rebuild_replaces_an_index_and_an_empty_folder_is_fine(tmp_path):
    root = tmp_path / "ix"
    root.mkdir()
    _build(_docs("old", 5), root)
    _build(_docs("new", 3), root, rebuild=True)
    assert _ids(root) == {"new0", "new1", "new2"}


def test_a_missing_index_with_a_previous_copy_is_restored_before_a_write(tmp_path):
    """Issue repro 3: `mv INDEX INDEX.previous; adarag index new.jsonl --out INDEX` lost the previous index."""
    root = tmp_path / "ix"
    _build(_docs("old", 30), root)
    root.rename(tmp_path / "ix.previous")
    _build(_docs("new", 5), root)
    assert _ids(root) == {f"old{i}" for i in range(30)} | {f"new{i}" for i in range(5)}


@pytest.mark.parametrize("mode, published", [("kill-staged", False), ("kill-renamed", False),
                                             ("kill-published", True), ("kill-cleaning", True)])
def test_kill_9_at_every_step_of_a_publish_leaves_a_loadable_index(tmp_path, mode, published):
    root = tmp_path / "ix"
    _build(_docs("old", 30), root)
    _build([], root, delete=["old0"])  # so the killed write also has deletion folders to leave
    p = _child(tmp_path, root, "new", 10, mode)
    p.communicate(timeout=120)
    assert p.returncode == -9
    old = {f"old{i}" for i in range(1, 30)}
    assert _ids(root) == (old | {f"new{i}" for i in range(10)} if published else old)
    assert _search_ok(root) == 20
    _build(_docs("more", 2), root)  # the next write cleans what the dead one left (and rolls back its SQL)
    names = sorted(p.name for p in root.iterdir())
    segs = ["seg-000001-000", "seg-000003-000", "seg-000004-000"] if published else \
        ["seg-000001-000", "seg-000003-000"]
    gens = ["gen-000003", "gen-000004"] if published else ["gen-000002", "gen-000003"]
    assert names == ["docs-000001.sqlite", *gens, MANIFEST, *segs, "write.lock"], names
    assert len(_ids(root)) == 29 + 2 + (10 if published else 0)


@pytest.mark.parametrize("op", ["optimize", "delete"])
@pytest.mark.parametrize("mode", ["kill-staged", "kill-renamed", "kill-published", "kill-cleaning"])
def test_kill_9_during_a_merge_or_a_delete_leaves_a_loadable_index(tmp_path, op, mode):
    from indexers.check import check_index

    root = tmp_path / "ix"
    _build(_docs("old", 30), root)
    _build(_docs("more", 3), root)  # two segments, so there is something to merge
    before = _ids(root)
    p = _child(tmp_path, root, op, 4, mode)
    p.communicate(timeout=120)
    assert p.returncode == -9
    gone = {f"old{i}" for i in range(5, 9)}
    after = _ids(root)
    published = mode in ("kill-published", "kill-cleaning")
    assert after == (before - gone if op == "delete" and published else before)
    assert _search_ok(root) == 20
    check_index(root)
    _build(_docs("late", 2), root)
    assert _ids(root) == after | {"late0", "late1"}
    check_index(root)


def test_a_failed_first_build_leaves_no_folder_and_a_failed_add_leaves_the_index(tmp_path):
    root = tmp_path / "ix"
    with pytest.raises(Exception):
        _build([Document(id="a", title="", text="x"), Document(id="a", title="", text="y")], root)
    assert not root.exists()
    _build(_docs("ok", 3), root)
    with pytest.raises(Exception):
        _build([Document(id="a", title="", text="x"), Document(id="a", title="", text="y")], root)
    assert _ids(root) == {"ok0", "ok1", "ok2"}


@pytest.mark.parametrize("name", ["my?idx", "with%20space", "pct%", "hash#x"])
def test_url_characters_in_the_index_path_stay_in_the_file_name(tmp_path, name):
    """`sqlite:///my?idx/...` wrote a file named `my` outside the index."""
    root = tmp_path / name
    _build(_docs("u", 4), root)
    _build(_docs("v", 2), root)
    assert _ids(root) == {"u0", "u1", "u2", "u3", "v0", "v1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_symlinked_index_path_keeps_working(tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    real.mkdir()
    link.symlink_to(real, target_is_directory=True)
    _build(_docs("s", 3), link)
    _build(_docs("t", 2), link)  # every later add used to break
    assert link.is_symlink() and (real / MANIFEST).exists()
    assert _ids(link) == {"s0", "s1", "s2", "t0", "t1"}


def test_an_out_that_cannot_be_created_is_a_config_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        _build(_docs("x", 1), tmp_path / "f")
    with pytest.raises(ConfigError, match="cannot create the index folder"):
        _build(_docs("x", 1), tmp_path / "f" / "sub")


def test_an_index_opened_before_another_writer_publishes_reports_itself_stale(tmp_path):
    root = tmp_path / "ix"
    _build(_docs("a", 3), root)
    with open_index(root) as ix:
        assert not ix.is_stale() and ix.generation == 1
        _build(_docs("b", 2), root)
        assert ix.is_stale()
        rows, scores = ix.store_of("bm25").search_batch([["passag"]], 10)[0]
        assert {h.doc_id for h in ix.hits(rows, scores)} == {"a0", "a1", "a2"}  # its generation still searches
    with open_index(root) as ix:
        assert not ix.is_stale() and ix.generation == 2


def test_stress_two_writers_and_a_reader_lose_nothing(tmp_path):
    """Done-means of issue #16: writers adding in turns while a reader reopens and searches; nothing lost."""
    root = tmp_path / "ix"
    _build(_docs("base", 20), root)
    writers = [_child(tmp_path, root, f"w{w}r{r}-", 15) for r in range(4) for w in range(2)]
    seen, deadline = 0, time.monotonic() + 300
    while any(p.poll() is None for p in writers) and time.monotonic() < deadline:
        n = len(_ids(root, quiet=False))
        assert n >= seen, "a reader saw documents disappear"
        seen = n
        assert _search_ok(root) == 20
    for p in writers:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert 20 < seen and len(_ids(root)) == 20 + 8 * 15  # the reader saw writes land while it read


def test_a_write_that_changes_nothing_publishes_no_generation(tmp_path):
    root = tmp_path / "ix"
    _build(_docs("a", 5), root)
    rep = _build(_docs("a", 5), root)
    assert (rep.added, rep.updated, rep.unchanged, rep.deleted) == (0, 0, 5, 0) and rep.manifest.generation == 1
    rep = _build([], root, delete=["no-such-id"])
    assert rep.deleted == 0 and rep.manifest.generation == 1
    assert sorted(p.name for p in root.iterdir()) == ["docs-000001.sqlite", "gen-000001", MANIFEST,
                                                      "seg-000001-000", "write.lock"]
    assert _build([], root, delete=["a0"]).manifest.generation == 2


def test_a_reader_of_the_published_generation_keeps_its_text_while_a_write_is_unpublished(tmp_path, monkeypatch):
    """The SQL store is updated in place before the manifest is published: a reader still on the published
    generation reads the pre-images of the passages the write changed or deleted, never the new text."""
    import indexers.index as ix_mod
    from indexers.sql_store import SQLStore

    root = tmp_path / "ix"
    _build(_docs("a", 5), root)
    with open_index(root) as ix:
        def killed(*a, **k):
            raise KeyboardInterrupt  # the writer dies after its SQL commit, before publishing ...

        monkeypatch.setattr(ix_mod, "publish_segments", killed)
        monkeypatch.setattr(SQLStore, "rollback", lambda self, g: 0)  # ... so nothing rolls its changes back
        with pytest.raises(KeyboardInterrupt):
            _build([Document(id="a1", title="a 1", text="rewritten")], root, delete=["a2"])
        assert ix.store.get_passages(["a1"])[0].text == "rewritten" and ix.store.count_documents() == 4
        rows, scores = ix.store_of("bm25").search_batch([["passag"]], 10)[0]
        hits = {h.id: h.text for h in ix.hits(rows, scores)}
        assert hits == {f"a{i}": f"a passage {i} words" for i in range(5)}  # the published generation's text
    monkeypatch.undo()
    with open_index(root) as ix:  # no writer holds the lock: opening rolls the dead write back
        assert ix.store.get_passages(["a1"])[0].text == "a passage 1 words" and ix.store.count_documents() == 5
