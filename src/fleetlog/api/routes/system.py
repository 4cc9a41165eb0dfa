"""Service routes: health, metrics, and what this service is."""

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from fleetlog.api.deps import ServicesDep, SettingsDep
from fleetlog.metrics import exposition
from fleetlog.records import Health, Readiness
from fleetlog.shippers.elastic.handshake import PRODUCT_HEADER, banner

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(services: ServicesDep) -> JSONResponse:
    """Liveness: 503 when a part does not answer; 200, degraded, when the store refuses writes.

    A restart cannot free a disk or Redis memory, so refused writes alone keep this 200; /ready
    is what takes the process out of traffic.
    """
    parts = await services.checks()
    writes = await services.write_checks()
    status = liveness(parts, writes)
    answer = Health(
        status=status,
        instance=services.settings.instance,
        mode=services.settings.mode,
        checks=parts | writes,
        timestamp=datetime.now(UTC),
    )
    return JSONResponse(
        answer.model_dump(mode="json"), status_code=503 if status == "unhealthy" else 200
    )


def liveness(
    parts: dict[str, bool], writes: dict[str, bool]
) -> Literal["healthy", "degraded", "unhealthy"]:
    if not all(parts.values()):
        return "unhealthy"
    return "healthy" if all(writes.values()) else "degraded"


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Whether this process should get traffic: every check passes, the backlog has room, and
    it is not draining to stop."""
    checks = await services.checks() | await services.write_checks()
    checks["accepting"] = not services.draining.is_set()
    backlog = await services.queue.backlog()
    limit = services.settings.max_backlog
    answer = Readiness(
        ready=all(checks.values()) and backlog < limit,
        instance=services.settings.instance,
        checks=checks,
        backlog=backlog,
        max_backlog=limit,
        timestamp=datetime.now(UTC),
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if answer.ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus text exposition."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/")
@router.head("/", operation_id="root_head")
async def root(settings: SettingsDep) -> JSONResponse:
    """What this service is and where its routes are; and, as Elasticsearch answers it, the
    version its clients check before they send to `_bulk` (docs/protocols.md)."""
    about = {
        **banner(settings),
        "service": "fleetlog",
        "instance": settings.instance,
        "mode": settings.mode,
        "endpoints": {
            "health": "/health",
            "ready": "/ready",
            "create_log": "POST /api/log",
            "create_logs": "POST /api/logs/batch",
            "get_logs": "GET /api/logs/{device_id}",
            "stats": "GET /api/stats",
            "metrics": "/metrics",
            "docs": "/docs",
            "ui": "/ui",
            "elasticsearch_bulk": "POST /_bulk",
        },
    }
    return JSONResponse(about, headers=PRODUCT_HEADER)
