"""The memory admin FastAPI app (its own port, bearer token, JSON errors)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lokiserve.server.memory_service import AdminError, MemoryService
from lokiserve.server.routes import fields, health
from lokiserve.server.settings import AdminSettings


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def build_admin_app(service: MemoryService, settings: AdminSettings, token: str) -> FastAPI:
    app = FastAPI(title="lokiserve memory admin", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.settings = settings
    app.state.token = token

    @app.exception_handler(AdminError)
    async def _admin_error(request: Request, exc: AdminError):
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return error(400, "bad_request", str(exc.errors())[:500])

    app.include_router(health.router)
    app.include_router(fields.router)
    return app
