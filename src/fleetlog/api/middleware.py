"""ASGI middleware counting requests and latency by route template (never the raw path)."""

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetlog.metrics import HTTP_LATENCY, HTTP_REQUESTS


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Labelled children, looked up once: `labels()` takes a lock on every call.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            template = getattr(scope.get("route"), "path_format", "unmatched")
            self._timer(template, scope["method"]).observe(time.perf_counter() - started)
            self._counter(template, scope["method"], status).inc()

    def _counter(self, template: str, method: str, status: int) -> Counter:
        key = (template, method, status)
        if key not in self._counters:
            self._counters[key] = HTTP_REQUESTS.labels(template, method, str(status))
        return self._counters[key]

    def _timer(self, template: str, method: str) -> Histogram:
        key = (template, method)
        if key not in self._timers:
            self._timers[key] = HTTP_LATENCY.labels(template, method)
        return self._timers[key]
