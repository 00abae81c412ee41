"""POST /memory/fields/{id}/facts: write facts into a field of the running model."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lokiserve.edit.facts import FactsError, loads_facts
from lokiserve.server.deps import AdminDep, FieldIndexDep, ServiceDep
from lokiserve.server.live_edits import VerificationFailed
from lokiserve.server.memory_service import AdminError
from lokiserve.server.routes.fields import read_limited_body
from lokiserve.server.schemas import EditResult, error_responses

router = APIRouter(prefix="/memory/fields", tags=["facts"], dependencies=[AdminDep])

FACTS_BODY_LIMIT = 1 << 20  # 1 MiB: about 2,000 facts with paraphrases and neighbours
FACTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"type": "array", "items": {"type": "object"}},
                {"type": "object", "properties": {"facts": {"type": "array", "items": {"type": "object"}}},
                 "required": ["facts"]},
            ]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/{field_id}/facts",
    response_model=EditResult,
    responses=error_responses(400, 401, 404, 409, 413, 422),
    openapi_extra=FACTS_BODY,
)
async def write_facts(index: FieldIndexDep, request: Request, service: ServiceDep):
    """Write the facts (a JSON list, ``{"facts": [...]}``, or JSONL; rows as
    in ``lokiserve edit``) into this field of the running model: the field is
    written in a worker thread, verified, and swapped in atomically. 422 with
    the report when verification fails; nothing changes on any error."""
    if service.editor is None:
        raise AdminError(409, "edits_unavailable", "this server was started without a model directory to edit")
    raw = await read_limited_body(request, FACTS_BODY_LIMIT)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AdminError(400, "bad_request", "the body is not UTF-8 text") from None
    try:
        facts = loads_facts(text, "body")
    except (FactsError, RecursionError) as exc:
        raise AdminError(400, "bad_facts", str(exc)[:500]) from None
    try:
        return await service.editor.edit(service, index, facts)
    except FactsError as exc:  # e.g. no room left in the field, a subject at the first token
        raise AdminError(400, "bad_facts", str(exc)[:500]) from None
    except VerificationFailed as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}, "report": exc.report},
                            status_code=422)
