"""Named FastAPI dependencies (``ServiceDep``, ``AdminDep``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lokiserve.server.auth import token_matches
from lokiserve.server.memory_service import AdminError, MemoryService


def get_service(request: Request) -> MemoryService:
    return request.app.state.service


def require_admin(request: Request) -> None:
    if not token_matches(request.headers.get("authorization"), request.app.state.token):
        raise AdminError(401, "unauthorized", "missing or invalid bearer token")


ServiceDep = Annotated[MemoryService, Depends(get_service)]
AdminDep = Depends(require_admin)
