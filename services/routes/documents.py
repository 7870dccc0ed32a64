"""Documents: POST /v1/documents (atomic ingest), GET and DELETE /v1/documents/{doc_id}, POST /v1/feedback."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from indexers.errors import NotFoundError
from indexers.types import Document
from services.deps import RagDep, StateDep
from services.schemas import DeleteResponse, DocumentOut, DocumentsRequest, ErrorOut, FeedbackRequest, IngestResponse

__all__ = ["router"]

router = APIRouter(tags=["documents"])

_ERRORS = {s: {"model": ErrorOut} for s in (401, 404, 413, 422, 500, 503, 504)}


@router.post("/v1/documents", response_model=IngestResponse, responses=_ERRORS)
async def add_documents(req: DocumentsRequest, state: StateDep, rag: RagDep) -> Any:
    """Add or replace documents (same id = update); all or nothing: a failure leaves the index as it was."""
    limit = state.settings.max_documents
    if len(req.documents) > limit:
        raise HTTPException(413, f"{len(req.documents)} documents in one request, over the limit of {limit}: "
                                 "send them in smaller batches")
    docs = [Document(id=d.id, text=d.text, title=d.title, metadata=d.metadata) for d in req.documents]
    return await state.work_gate.run(rag.add_documents, docs)


@router.get("/v1/documents/{doc_id:path}", response_model=DocumentOut, responses=_ERRORS)
async def get_document(doc_id: str, state: StateDep, rag: RagDep) -> Any:
    """One stored document by id (404 if unknown)."""
    doc = await state.work_gate.run(rag.get_document, doc_id)
    if doc is None:
        raise NotFoundError(f"no document with id {doc_id!r} in the index; POST /v1/documents adds one")
    return {"id": doc.id, "text": doc.text, "title": doc.title, "metadata": dict(doc.metadata)}


@router.delete("/v1/documents/{doc_id:path}", response_model=DeleteResponse, responses=_ERRORS)
async def delete_document(doc_id: str, state: StateDep, rag: RagDep) -> Any:
    """Delete a document and its passages from every store (404 if unknown)."""
    n = await state.work_gate.run(rag.delete_documents, [doc_id])
    if not n:
        raise NotFoundError(f"no document with id {doc_id!r} in the index: nothing deleted")
    return {"deleted": int(n)}


@router.post("/v1/feedback", status_code=204, responses=_ERRORS)
async def feedback(req: FeedbackRequest, state: StateDep, rag: RagDep) -> None:
    """Record whether an answer (by its `answer_id`) was correct."""
    await state.work_gate.run(rag.feedback, req.answer_id, req.correct)
