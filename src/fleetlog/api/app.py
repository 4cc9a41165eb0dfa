"""The ASGI application: `create_app(settings)`, with the services opened in its lifespan."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fleetlog import __version__
from fleetlog.alerts.runtime import open_alerting
from fleetlog.api.draining import on_stop_signal
from fleetlog.api.errors import add_exception_handlers, documented
from fleetlog.api.fastpath import FastPath
from fleetlog.api.idempotency import IdempotentIngest
from fleetlog.api.limits import BodyBudget, RequestLimits
from fleetlog.api.middleware import MetricsMiddleware
from fleetlog.api.openapi import install_openapi
from fleetlog.api.probes import probing
from fleetlog.api.routes import (
    admin,
    alerts,
    auth,
    counts,
    docs,
    elastic,
    export,
    gelf,
    ingest,
    loki,
    otlp,
    query,
    queue,
    retention,
    search,
    system,
    tail,
    ui,
)
from fleetlog.api.security import jwt_secret, open_gatekeeper
from fleetlog.api.services import open_services
from fleetlog.config import Settings
from fleetlog.listeners import open_listeners
from fleetlog.records import LogBatchIn, LogIn
from fleetlog.shippers.loki_wire import LokiPush
from fleetlog.tracing import exporting_spans, tracing_on


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        secret = jwt_secret(settings)
        with exporting_spans(settings, service="fleetlog-api"):
            async with (
                open_services(settings, secret=secret) as services,
                open_gatekeeper(settings, secret=secret) as gatekeeper,
                open_listeners(settings, services.ingest) as listeners,
                open_alerting(settings) as alerting,
                probing(services),
            ):
                app.state.services = services
                app.state.gatekeeper = gatekeeper
                app.state.listeners = listeners
                app.state.alerting = alerting
                # What is alive now lives as long as the process: out of the collector's
                # sight, the ~100k objects of the app are not scanned again by every full
                # collection, which a 1,000-log batch's objects set off often (it halves the
                # cost of validating one).
                gc.freeze()
                with on_stop_signal(services.drain):
                    yield

    app = FastAPI(
        title="fleetlog",
        version=__version__,
        description="Log collection that answers fast and never loses an accepted log.",
        lifespan=lifespan,
        # Served by `docs` from the package's own copies of their scripts, never a CDN.
        docs_url=None,
        redoc_url=None,
        # A path with a slash too many is not found, never redirected: Starlette would build
        # the Location from the client's Host header.
        redirect_slashes=False,
        # Off unless asked for: even unconfigured, it asks OpenTelemetry for providers on
        # every request.
        telemetry={"tracing": tracing_on(settings), "metrics": False, "logs": False},
        responses=documented(
            {
                400: "The body cannot be parsed",
                414: "The URL is longer than the bound on its bytes",
                422: "A parameter or field breaks its rule",
            }
        ),
    )
    add_exception_handlers(app)
    if not tracing_on(settings):
        # Added first, so innermost: the limits and metrics below wrap it as they wrap every
        # route. Traces learn a request's route from FastAPI's router, so with tracing on
        # the router serves ingest too.
        app.add_middleware(FastPath, routes=ingest.router.routes)
    app.add_middleware(IdempotentIngest)
    app.add_middleware(
        RequestLimits,
        max_url_bytes=settings.max_url_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_body_bytes=settings.max_body_bytes,
        budget=BodyBudget(
            settings.max_inflight_body_bytes, retry_after=settings.retry_after.total_seconds()
        ),
    )
    app.add_middleware(MetricsMiddleware, access_log=settings.access_log)
    # `counts` first: /api/logs/{device_id} of `query` would take /api/logs/count. `elastic`
    # last: its paths start with `_` or end with `/_bulk`, so it takes no other route's.
    shippers = (loki, otlp, gelf)
    pages = (docs, ui)
    for module in (
        ingest,
        *shippers,
        counts,
        search,
        query,
        system,
        auth,
        admin,
        alerts,
        tail,
        *pages,
        elastic,
    ):
        app.include_router(module.router)
    app.include_router(retention.router)
    app.include_router(export.router)
    app.include_router(queue.router)
    install_openapi(app, [LogIn, LogBatchIn, LokiPush])
    return app


def app_from_environment() -> FastAPI:
    """Factory for server processes started by `fleetlog serve --workers N`."""
    return create_app(Settings())
