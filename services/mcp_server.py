"""`adarag mcp INDEX`: the index as Model Context Protocol tools (the official `mcp` SDK), so agents can search
it, ask it and read its documents.

Tools (typed input schemas from the signatures):
- `search(query, store?, k?, filters?)`: ranked passages;
- `ask(question, mode?, max_calls?, max_seconds?, max_new_tokens?)`: a grounded answer with its citations,
  passages, mode and trace (the budget as in /v1/ask);
- `get_document(doc_id)`: one stored document.
adarag's own errors (a bad filter, an unknown mode, a missing document) come back as MCP tool errors
(`is_error`) carrying the message that says what to do; anything else is the SDK's generic tool error.
Transports: stdio (default; one client, the agent that spawned it) or streamable HTTP on loopback (`--http`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from indexers.errors import ConfigError, NotFoundError, RagError, missing

__all__ = ["build_server", "serve_mcp"]

_F = TypeVar("_F", bound=Callable[..., Any])
Mode = Literal["auto", "none", "one_shot", "iterative", "chain"]


def _mcp_server() -> Any:
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError as e:
        raise missing("mcp", "mcp") from e
    return MCPServer


def _tool_errors(fn: _F) -> _F:
    """adarag's own errors become MCP tool errors with their message (the SDK hides any other exception)."""
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RagError, ValueError, TypeError) as e:
            raise ToolError(str(e)) from e

    return wrapped  # type: ignore[return-value]


def build_server(rag: Any) -> Any:
    """An MCPServer whose tools answer from `rag` (an opened rag.sdk.RAG)."""
    server = _mcp_server()(name="adarag", instructions=(
        "Search and question-answering over one adarag index. Use `search` for ranked passages, `ask` for a "
        "grounded answer with citations, `get_document` to read a cited document in full."))

    @server.tool(description="Ranked passages for a query. store: bm25, dense, ngram, fused or stores joined by "
                             "'+' (default: fused); filters: a Haystack filter on document metadata.")
    @_tool_errors
    def search(query: str, store: str | None = None, k: int = 10,
               filters: dict[str, Any] | None = None) -> dict[str, Any]:
        return rag.search(query, store=store, k=k, filters=filters).to_dict()

    @server.tool(description="A grounded answer with its citations (passage ids), passages, search mode and "
                             "trace. mode: auto lets the controller decide; max_calls / max_seconds cap the cost.")
    @_tool_errors
    def ask(question: str, mode: Mode = "auto", max_calls: int | None = None, max_seconds: float | None = None,
            max_new_tokens: int = 64) -> dict[str, Any]:
        budget = None
        if max_calls is not None or max_seconds is not None:
            budget = {"retrieval_calls": max_calls, "seconds": max_seconds}
        d = rag.ask(question, mode=None if mode == "auto" else mode, max_new_tokens=max_new_tokens,
                    budget=budget).to_dict()
        d.pop("raw_text", None)
        return d

    @server.tool(description="One stored document by id: title, text and metadata.")
    @_tool_errors
    def get_document(doc_id: str) -> dict[str, Any]:
        doc = rag.get_document(doc_id)
        if doc is None:
            raise NotFoundError(f"no document {doc_id!r} in this index: take ids from search or ask results")
        return {"id": doc.id, "title": doc.title, "text": doc.text, "metadata": dict(doc.metadata)}

    return server


def serve_mcp(rag: Any, *, http: bool = False, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the MCP server until its client goes away (stdio) or the process is stopped (HTTP, loopback only)."""
    server = build_server(rag)
    if not http:
        server.run("stdio")
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"adarag mcp --http serves loopback only (it has no API keys), not {host!r}: use adarag "
                       "serve for a networked service")
    server.run("streamable-http", host=host, port=port)
