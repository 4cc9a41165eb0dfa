"""ASGI middleware counting requests and latency by route template (never the raw path), and
writing the access log: one line per request, in the same layer, so the hot path pays for one
wrapper of `send`, not two.

What the access log reports that only the app knows reaches it through the scope, set by whom
knows it: the principal by RequestLimits or the security dependencies (`ADMITTED`), the logs
accepted by the ingest routes (`note_accepted`). A dict lookup each, no context variable.
"""

import logging
import os
import re
import time

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetlog.api.errors import REQUEST_ID_KEY
from fleetlog.api.security import ADMITTED
from fleetlog.auth.principals import Principal
from fleetlog.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = logging.getLogger("fleetlog.access")

ACCEPTED = "fleetlog.accepted"
REQUEST_ID = b"x-request-id"
ACCESS_LINE = (
    "%(method)s %(route)s %(status)d %(duration_ms).1fms in=%(bytes_in)d out=%(bytes_out)d "
    "logs=%(logs_accepted)s by=%(principal)s id=%(request_id)s"
)
# A client's request id is echoed into logs and headers: only a short token of safe characters.
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


def note_accepted(request: Request, logs: int) -> None:
    """Tell the access log how many logs this request got accepted."""
    request.scope[ACCEPTED] = logs


def request_id(scope: Scope) -> bytes:
    """The client's X-Request-ID if it is sane, else a fresh one."""
    value: bytes
    for name, value in scope["headers"]:
        if name == REQUEST_ID:
            if SANE_REQUEST_ID.fullmatch(value):
                return value
            break
    return os.urandom(8).hex().encode()


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        # Labelled children, looked up once: `labels()` takes a lock on every call.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.access_log:
            await self.logged(scope, receive, send)
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
            self.count(scope, status, time.perf_counter() - started)

    async def logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request, counted and written to the access log with its id echoed back."""
        started = time.perf_counter()
        rid = scope[REQUEST_ID_KEY] = request_id(scope)
        status = 500
        bytes_in = bytes_out = 0

        async def counted_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            bytes_in += len(message.get("body", b""))
            return message

        async def send_with_status(message: Message) -> None:
            nonlocal status, bytes_out
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID, rid)]
            else:
                bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counted_receive, send_with_status)
        finally:
            duration = time.perf_counter() - started
            template = self.count(scope, status, duration)
            if access_log.isEnabledFor(logging.INFO):
                principal: Principal | None = scope.get(ADMITTED)
                fields = {
                    "request_id": rid.decode(),
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "bytes_in": bytes_in,
                    "bytes_out": bytes_out,
                    "logs_accepted": scope.get(ACCEPTED),
                    "principal": None if principal is None else principal.name,
                }
                # The line shows what a request had none of as `-`; the JSON fields are null.
                shown = fields | {
                    "logs_accepted": "-"
                    if fields["logs_accepted"] is None
                    else fields["logs_accepted"],
                    "principal": fields["principal"] or "-",
                }
                # Built directly: `info()` would walk the stack for a caller nobody reads.
                record = access_log.makeRecord(
                    access_log.name, logging.INFO, "", 0, ACCESS_LINE, (shown,), None
                )
                record.fields = fields
                access_log.handle(record)

    def count(self, scope: Scope, status: int, duration: float) -> str:
        """Count the request by its route template; returns the template."""
        template: str = getattr(scope.get("route"), "path_format", "unmatched")
        self._timer(template, scope["method"]).observe(duration)
        self._counter(template, scope["method"], status).inc()
        return template

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
