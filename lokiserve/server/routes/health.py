"""/healthz (no auth) and /metrics (Prometheus, auth)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lokiserve.server.deps import AdminDep, ServiceDep
from lokiserve.server.schemas import Health

router = APIRouter()


@router.get("/healthz", response_model=Health)
async def healthz():
    return {"status": "ok"}


@router.get("/metrics", dependencies=[AdminDep], response_class=Response)
async def metrics(service: ServiceDep):
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
