"""GET /: the page to ask the index from a browser (services/web/index.html: one self-contained file, no CDN,
no external fonts, no build step). It calls /v1/ask (streamed) and /v1/search with the key typed into it."""
from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["router"]

router = APIRouter(tags=["page"])

PAGE = Path(__file__).resolve().parents[1] / "web" / "index.html"


@cache
def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The web page (open: it holds no data; every call it makes needs the API key when auth is on)."""
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache",
                                          "Content-Security-Policy": "default-src 'self'; style-src 'self' "
                                          "'unsafe-inline'; script-src 'self' 'unsafe-inline'"})
