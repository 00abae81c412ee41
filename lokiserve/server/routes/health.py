"""/healthz (no auth) and /metrics (Prometheus, auth)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lokiserve.server.deps import AdminDep, ServiceDep
from lokiserve.server.schemas import Health, ReplicaList, error_responses

router = APIRouter(tags=["health"])

PROMETHEUS_TEXT = {200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}


UNHEALTHY = {503: {"model": Health, "description": "the data-parallel replicas hold different fields"}}


@router.get("/healthz", response_model=Health, response_model_exclude_none=True, responses=UNHEALTHY)
async def healthz(service: ServiceDep, response: Response):
    """Health; needs no token. 503 when data-parallel replicas disagree about the memory."""
    health = await service.health()
    if health["status"] != "ok":
        response.status_code = 503
    return health


@router.get("/metrics", dependencies=[AdminDep], response_model=None, response_class=Response,
            responses={**PROMETHEUS_TEXT, **error_responses(401)})
async def metrics(service: ServiceDep) -> Response:
    """Memory version, swap counts and durations, which fields are active."""
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/memory/replicas", dependencies=[AdminDep], response_model=ReplicaList, responses=error_responses(401))
async def replicas(service: ServiceDep):
    """Per data-parallel replica and tensor-parallel rank: every field's state and shard checksum."""
    return await service.replica_report()
