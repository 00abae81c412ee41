"""/memory/fields: list, inspect, replace, zero and export fields."""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import ValidationError

from lokiserve.server.deps import AdminDep, FieldIndexDep, ServiceDep
from lokiserve.server.memory_service import AdminError
from lokiserve.server.schemas import FieldInfo, FieldList, PathBody, error_responses

router = APIRouter(prefix="/memory/fields", tags=["fields"], dependencies=[AdminDep])

IfMatch = Annotated[str | None, Header(description="apply only if the field's current sha256 is this one (else 412)")]
AllowRename = Annotated[bool, Query(description="load a file made for another field onto this non-empty one "
                                                "(else 409 field_name_mismatch); the field is then shown by the file's name")]
JSON_BODY_LIMIT = 64 << 10

# The PUT body is read by hand (a size limit before buffering, two content
# types), so FastAPI cannot derive it: it is declared here.
PUT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": PathBody.model_json_schema()},
        },
    }
}
FIELD_FILE = {
    200: {
        "description": "the live contents as a field file",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {"ETag": {"description": "the field's sha256, quoted", "schema": {"type": "string"}}},
    }
}


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse larger bodies before buffering them."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise AdminError(400, "bad_request", "invalid Content-Length")
        if int(declared) > limit:
            raise AdminError(413, "too_large", f"body of {declared} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise AdminError(413, "too_large", f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_path_body(raw: bytes) -> PathBody:
    try:
        return PathBody.model_validate(json.loads(raw))
    except (ValueError, ValidationError, RecursionError) as exc:  # RecursionError: "[[[[…" nested too deep
        raise AdminError(400, "bad_request", f'expected JSON {{"path": "..."}}: {str(exc)[:200]}') from None


@router.get("", response_model=FieldList, responses=error_responses(401))
async def list_fields(service: ServiceDep):
    """Every field with its state and checksum, and the memory version."""
    return service.listing()


@router.get("/{field_id}", response_model=FieldInfo, responses=error_responses(401, 404))
async def get_field(index: FieldIndexDep, service: ServiceDep):
    """One field; ``field_id`` is its name or index."""
    return service.describe(index)


@router.put(
    "/{field_id}",
    response_model=FieldInfo,
    responses=error_responses(400, 401, 403, 404, 409, 412, 413, 415, 422),
    openapi_extra=PUT_BODY,
)
async def put_field(index: FieldIndexDep, request: Request, service: ServiceDep, if_match: IfMatch = None,
                    allow_rename: AllowRename = False):
    """Replace a field: the body is a field file (``application/octet-stream``),
    or JSON ``{"path": ...}`` naming one under the memory folder. A file equal
    to the live contents changes nothing; an all-zero one loads as zeroed. A
    file made for another field (its ``name``) is refused onto a non-empty field
    unless ``allow_rename``; an empty field takes the file's name."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = parse_path_body(await read_limited_body(request, JSON_BODY_LIMIT))
        data, source = service.read_memory_file(request.app.state.settings.memory_dir, body.path)
    elif content_type in ("application/octet-stream", ""):
        data = await read_limited_body(request, service.max_bytes)
        source = request.headers.get("x-lokiserve-source", "upload")[:200]
    else:
        raise AdminError(415, "unsupported_media_type", f"content type {content_type!r}: use application/octet-stream or application/json")
    if not data:
        raise AdminError(400, "bad_request", "empty body: send a field file, or JSON {\"path\": ...}")
    return await service.put(index, data, source, if_match, allow_rename)


@router.post("/{field_id}/zero", response_model=FieldInfo, responses=error_responses(401, 404, 412))
async def zero_field(index: FieldIndexDep, service: ServiceDep, if_match: IfMatch = None):
    """Remove the field from retrieval: its term becomes exactly 0."""
    return await service.zero(index, if_match)


@router.get("/{field_id}/file", response_model=None, response_class=Response, responses={**FIELD_FILE, **error_responses(401, 404)})
async def export_field(index: FieldIndexDep, service: ServiceDep) -> Response:
    """The live contents as a field file; a PUT of it is a no-op."""
    data, sha = await service.export(index)
    shown = service.describe(index)["name"]
    name = shown if re.fullmatch(r"[A-Za-z0-9._-]{1,100}", shown) else service.names[index]  # a header-safe file name
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"ETag": f'"{sha}"', "Content-Disposition": f'attachment; filename="{name}.safetensors"'},
    )
