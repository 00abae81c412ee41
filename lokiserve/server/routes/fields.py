"""/memory/fields: list, inspect, replace, zero and export fields."""

from __future__ import annotations

import json

from fastapi import APIRouter, Header, Request, Response
from pydantic import ValidationError

from lokiserve.server.deps import AdminDep, ServiceDep
from lokiserve.server.memory_service import AdminError
from lokiserve.server.schemas import ErrorBody, FieldInfo, FieldList, PathBody

router = APIRouter(prefix="/memory/fields", dependencies=[AdminDep], responses={"4XX": {"model": ErrorBody}})


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse larger bodies before buffering them."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
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


@router.get("", response_model=FieldList)
async def list_fields(service: ServiceDep):
    return service.listing()


@router.get("/{field_id}", response_model=FieldInfo)
async def get_field(field_id: str, service: ServiceDep):
    return service.describe(service.index(field_id))


@router.put("/{field_id}", response_model=FieldInfo)
async def put_field(
    field_id: str,
    request: Request,
    service: ServiceDep,
    if_match: str | None = Header(default=None),
):
    """Body: a field file (``application/octet-stream``), or JSON ``{"path": ...}``
    relative to the memory folder."""
    index = service.index(field_id)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        raw = await read_limited_body(request, 64 << 10)
        try:
            body = PathBody.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            raise AdminError(400, "bad_request", f'expected JSON {{"path": "..."}}: {str(exc)[:200]}') from None
        path = service.resolve_memory_path(request.app.state.settings.memory_dir, body.path)
        data = path.read_bytes()
        source = str(path.relative_to(request.app.state.settings.memory_dir))
    elif content_type in ("application/octet-stream", ""):
        data = await read_limited_body(request, service.max_bytes)
        source = request.headers.get("x-lokiserve-source", "upload")[:200]
    else:
        raise AdminError(415, "unsupported_media_type", f"content type {content_type!r}: use application/octet-stream or application/json")
    return await service.put(index, data, source, if_match)


@router.post("/{field_id}/zero", response_model=FieldInfo)
async def zero_field(field_id: str, service: ServiceDep, if_match: str | None = Header(default=None)):
    return await service.zero(service.index(field_id), if_match)


@router.get("/{field_id}/file", response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
async def export_field(field_id: str, service: ServiceDep):
    index = service.index(field_id)
    data, sha = await service.export(index)
    name = service.names[index]
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"ETag": f'"{sha}"', "Content-Disposition": f'attachment; filename="{name}.safetensors"'},
    )
