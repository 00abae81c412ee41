"""The memory admin FastAPI app (its own port, bearer token, JSON errors).

Every answer but a success is an ``ErrorBody``; every route documents its
statuses in the OpenAPI schema (``/openapi.json``, ``/docs``, token needed).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lokiserve import __version__
from lokiserve.server.memory_service import AdminError, MemoryService
from lokiserve.server.routes import docs, facts, fields, health, transactions
from lokiserve.server.settings import AdminSettings


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method of every route on this path: Starlette's 405 names only the
    first matching route's (GET for ``/memory/fields/{id}``, not GET, PUT)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def admin_openapi(app: FastAPI) -> dict:
    """The schema, less FastAPI's automatic 422 ``HTTPValidationError``
    responses: request validation errors are answered 400 with an ``ErrorBody``
    (see ``build_admin_app``), and a route that can answer 422 declares it."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for operations in schema["paths"].values():
            for operation in operations.values():
                ref = operation["responses"].get("422", {}).get("content", {}).get("application/json", {})
                if ref.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                    del operation["responses"]["422"]
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def build_admin_app(service: MemoryService, settings: AdminSettings, token: str) -> FastAPI:
    # The stock docs routes are open; routes/docs.py serves them behind the token.
    # No slash redirects: a 307 is no documented answer, a 404 is.
    app = FastAPI(
        title="lokiserve memory admin",
        version=__version__,
        description="Hot-swap the memory fields of the served LoKiFormer. Errors are "
        '`{"error": {"code": ..., "message": ...}}`.',
        docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False,
    )
    app.openapi = lambda: admin_openapi(app)
    app.state.service = service
    app.state.settings = settings
    app.state.token = token

    @app.middleware("http")
    async def _one_segment_ids(request: Request, call_next):
        # uvicorn decodes %2F before routing: "0%2Ffile" would be field 0's
        # file, and a PUT of it a 405. A field id is one segment, so no field.
        if b"%2f" in request.scope.get("raw_path", b"").lower():
            return error(404, "not_found", "no such resource: a path segment cannot contain an encoded '/'")
        return await call_next(request)

    @app.exception_handler(AdminError)
    async def _admin_error(request: Request, exc: AdminError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: a 405 names the allowed methods
            headers["Allow"] = allowed_methods(request)
        return error(exc.status_code, "http_error", str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return error(400, "bad_request", str(exc.errors())[:500])

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):  # still logged by the server
        return error(500, "internal_error", "internal error; the server log has the details")

    app.include_router(health.router)
    app.include_router(fields.router)
    app.include_router(facts.router)
    app.include_router(transactions.router)
    app.include_router(docs.router)
    return app
