"""/memory/transactions: stage field changes, then commit or abort them (the
two-phase protocol ``lokiserve fleet apply`` drives across servers)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError

from lokiserve.server.deps import AdminDep, ServiceDep
from lokiserve.server.memory_service import AdminError, ChangeRequest, MemoryService
from lokiserve.server.routes.fields import read_limited_body
from lokiserve.server.schemas import ChangeBody, TransactionBody, TransactionInfo, error_responses, inline_schema

router = APIRouter(prefix="/memory/transactions", tags=["transactions"], dependencies=[AdminDep])

TransactionId = Annotated[str, Path(description="the id the stage answered (or the client chose)", examples=["rollout-42"])]

# The body is read by hand (a size limit before buffering), so it is declared here.
STAGE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": inline_schema(TransactionBody)}}}}
JSON_OVERHEAD = 64 << 10


def body_limit(service: MemoryService) -> int:
    """Every field once, each a base64 file at the size limit, plus the JSON around them."""
    return len(service.names) * (4 * ((service.max_bytes + 2) // 3)) + JSON_OVERHEAD


def parse_transaction_body(raw: bytes) -> TransactionBody:
    try:
        return TransactionBody.model_validate_json(raw)
    except (ValueError, ValidationError, RecursionError) as exc:
        raise AdminError(400, "bad_request", f"expected a transaction body: {str(exc)[:300]}") from None


def change_request(change: ChangeBody, request: Request, service: MemoryService) -> ChangeRequest:
    """A change's field index and bytes: decoded, or read from the memory folder (as a PUT would)."""
    index = service.index(change.field)
    if change.zero:
        return ChangeRequest(index, None, "zeroed")
    if change.path is not None:
        data, source = service.read_memory_file(request.app.state.settings.memory_dir, change.path)
    else:
        if len(change.file_b64) > 4 * ((service.max_bytes + 2) // 3):
            raise AdminError(413, "too_large", f"field {change.field!r}: file over the {service.max_bytes}-byte limit")
        try:
            data = base64.b64decode(change.file_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AdminError(400, "bad_request", f"field {change.field[:100]!r}: file_b64 is not base64: {exc}") from None
        source = "upload"
    if not data:
        raise AdminError(400, "bad_request", f"field {change.field[:100]!r}: empty file")
    return ChangeRequest(index, data, change.source or source, change.allow_rename)


@router.post("", response_model=TransactionInfo, openapi_extra=STAGE_BODY,
             responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429))
async def stage_transaction(request: Request, service: ServiceDep):
    """Stage changes to several fields: each file is checked as a PUT checks it
    and kept; nothing live changes. Staged changes expire after ``ttl_seconds``
    unless committed. Staging the same changes again under the same ``id`` is a
    no-op; a field changed by anything else before the commit fails it (409)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise AdminError(415, "unsupported_media_type", f"content type {content_type!r}: use application/json")
    body = parse_transaction_body(await read_limited_body(request, body_limit(service)))
    changes = [change_request(c, request, service) for c in body.changes]
    return await service.stage(body.id, body.ttl_seconds, changes)


@router.get("/{tx_id}", response_model=TransactionInfo, responses=error_responses(401, 404))
async def get_transaction(tx_id: TransactionId, service: ServiceDep):
    """A transaction's state: staged, expired or committed (with the version and
    the fields it made); an aborted one is gone (404 ``transaction_aborted``)."""
    return service.get_transaction(tx_id)


@router.post("/{tx_id}/commit", response_model=TransactionInfo, responses=error_responses(401, 404, 409, 410))
async def commit_transaction(tx_id: TransactionId, service: ServiceDep):
    """Apply every staged change at once (one memory version); committing a
    committed transaction answers the same again. 409 if it was aborted or a
    field changed since staging, 410 if it expired."""
    return await service.commit(tx_id)


@router.delete("/{tx_id}", response_model=TransactionInfo, responses=error_responses(401, 404, 409))
async def abort_transaction(tx_id: TransactionId, service: ServiceDep):
    """Drop a staged transaction (nothing changes); aborting it again answers
    the same. 409 if it is committed."""
    return await service.abort(tx_id)
