"""/openapi.json and /docs (Swagger UI), behind the bearer token like the API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from lokiserve.server.deps import AdminDep

router = APIRouter(dependencies=[AdminDep], include_in_schema=False)


@router.get("/openapi.json", response_model=None, response_class=JSONResponse)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_model=None, response_class=HTMLResponse)
async def docs(request: Request) -> HTMLResponse:
    # The schema is embedded in the page: a browser's own fetch of
    # /openapi.json would carry no token. "Authorize" takes the token for
    # the requests the page makes.
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} - docs",
        swagger_ui_parameters={"spec": request.app.openapi(), "persistAuthorization": False},
    )
