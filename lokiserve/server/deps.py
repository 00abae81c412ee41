"""Named FastAPI dependencies (``ServiceDep``, ``AdminDep``, ``FieldIndexDep``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lokiserve.server.auth import token_equal
from lokiserve.server.memory_service import AdminError, MemoryService

# auto_error=False: a missing or malformed header is our 401 with an ErrorBody,
# not FastAPI's; the scheme also declares the bearer token in the OpenAPI schema.
bearer = HTTPBearer(auto_error=False, description="the admin token ($LOKISERVE_ADMIN_TOKEN, --admin-token-file, "
                    "or the one generated in the state dir)")


def get_service(request: Request) -> MemoryService:
    return request.app.state.service


def require_admin(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> None:
    if credentials is None or not token_equal(credentials.credentials, request.app.state.token):
        raise AdminError(401, "unauthorized", "missing or invalid bearer token")


ServiceDep = Annotated[MemoryService, Depends(get_service)]
AdminDep = Depends(require_admin)


def field_index(
    field_id: Annotated[str, Path(description="a field name or its index", examples=["0"])],
    service: ServiceDep,
) -> int:
    # resolve_field_id takes only short ASCII digit strings as indexes ("١", "²" and
    # 5000-digit ids are names, and name no field): an unknown id is the service's 404.
    return service.index(field_id)


FieldIndexDep = Annotated[int, Depends(field_index)]
