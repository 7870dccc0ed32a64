"""`adarag serve` restores an index an interrupted swap left as INDEX.previous instead of saying to rebuild
(issue #16, repro 3), and refuses a folder that is not an index before starting."""
import pytest

pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")

from indexers.errors import IndexFormatError  # noqa: E402
from indexers.index import BuildParams, build_index  # noqa: E402
from indexers.types import Document  # noqa: E402
from services import serve as serve_mod  # noqa: E402
from services.settings import ServiceSettings  # noqa: E402


def test_serve_restores_a_previous_index_and_refuses_a_missing_one(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: started.append(app))
    root = tmp_path / "ix"
    build_index([Document(id="a", title="", text="some words")], root, BuildParams(stores=("bm25",)), progress=False)
    root.rename(tmp_path / "ix.previous")
    settings = ServiceSettings(allow_anonymous=True, warm_up=False)
    serve_mod.serve(root, settings)
    assert started and (root / "manifest.json").exists() and not (tmp_path / "ix.previous").exists()
    with pytest.raises(IndexFormatError, match="no index at"):
        serve_mod.serve(tmp_path / "nothing", settings)
    (tmp_path / "folder").mkdir()
    with pytest.raises(IndexFormatError, match="not an adarag index"):
        serve_mod.serve(tmp_path / "folder", settings)
    assert len(started) == 1
