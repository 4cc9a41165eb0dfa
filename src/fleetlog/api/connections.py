"""The HTTP/1.1 connection: uvicorn's httptools protocol, bounded in what one client can hold.

httptools builds a header, a trailer or a URL that arrives in pieces by concatenation, so an
unending one costs the square of its size; and uvicorn keeps a connection open for as long as its
client is not silent. `BoundedHttpProtocol` counts the bytes of a request that are not its body
(head, chunk framing, trailers) as they arrive and closes the connection past `max_head_bytes`;
it closes connections whose head is not complete after `head_timeout`, whose body stops moving for
`body_timeout`, or whose body averages less than `min_body_rate` once it has been arriving for
`body_timeout`; and it refuses connections past `max_connections` per process. Where the server
can still answer, it answers in JSON, as the API does, then closes.
"""

import asyncio
import math
import resource
from asyncio import TimerHandle
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from fleetlog.api.errors import error_response
from fleetlog.config import Settings
from fleetlog.errors import (
    FleetlogError,
    HeadersTooLarge,
    MalformedRequest,
    RequestTimeout,
    Unavailable,
    UriTooLong,
)
from fleetlog.metrics import CONNECTIONS_CLOSED, OPEN_CONNECTIONS

# Files a server process holds besides its connections: the store, logs, pipes, the listener.
FILE_HEADROOM = 256
# What one chunk's size line and closing CRLF may take without counting against the head bound:
# 16 hex digits (any 64-bit size) and a short extension. Chunk extensions are otherwise counted.
CHUNK_FRAMING_BYTES = 32


@dataclass(frozen=True)
class ConnectionLimits:
    """What one server process allows its connections (see the `Settings` of the same names)."""

    max_head_bytes: int
    max_url_bytes: int
    head_timeout: float
    body_timeout: float
    max_connections: int
    min_body_rate: float
    retry_after: float

    @property
    def recheck(self) -> float:
        """Longest a connection's timer sleeps: no deadline that starts meanwhile is missed."""
        return min(self.head_timeout, self.body_timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ConnectionLimits":
        return cls(
            max_head_bytes=settings.max_head_bytes,
            max_url_bytes=settings.max_url_bytes,
            head_timeout=settings.head_timeout.total_seconds(),
            body_timeout=settings.body_timeout.total_seconds(),
            max_connections=settings.max_connections,
            min_body_rate=settings.min_body_rate,
            retry_after=settings.retry_after.total_seconds(),
        )


def broken(field: str, rule: str, limit: float | None = None) -> list[dict[str, Any]]:
    """The `detail` of an error answer: the part of the request and the rule it broke."""
    detail: dict[str, Any] = {"field": field, "rule": rule}
    if limit is not None:
        detail["limit"] = limit
    return [detail]


def rendered(error: FleetlogError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 answer carrying `error` as the API renders it, closing the connection."""
    headers = {**error.headers, "Connection": "close"}
    response = error_response(error.status, error.code, error.message, error.detail, headers)
    head = [STATUS_LINE[error.status]]
    for name, value in [*default_headers, *response.raw_headers]:
        head += [name, b": ", value, b"\r\n"]
    return b"".join([*head, b"\r\n", response.body])


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded head, deadlines, a least body rate and a cap.

    It sits on the ingest hot path: per request it only notes a few times and flags, and counts
    bytes per `data_received`, `on_body` and chunk, never one by one. Each connection has one
    timer, which looks at what the connection is doing when it fires and sets itself again for
    the next deadline due, or for `recheck` seconds at most.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.reading_head = True  # from a connection's start, and after each complete request
        self.head_started: float | None = None  # None between requests: keep-alive governs
        # Bytes of this request that are not body (less each chunk's allowance), body bytes, both
        # counted on arrival: a whole buffer before the parser reads it, the body as it is parsed.
        self.non_body_bytes = 0
        self.body_bytes = 0
        self.url = bytearray()  # type: ignore[assignment]
        self.awaiting_body = False
        self.body_started = 0.0
        self.body_moved_at = 0.0
        self.deadline: TimerHandle | None = None
        self.counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self.make_room():
            busy = Unavailable("too many open connections", retry_after=self.limits.retry_after)
            self.end("over_capacity", busy)
            return
        self.counted = True
        OPEN_CONNECTIONS.inc()
        self.head_started = self.loop.time()
        self.deadline = self.loop.call_later(self.limits.recheck, self.check_deadlines)

    def make_room(self) -> bool:
        """Close one connection that holds no request (none yet, or between two), if there is one.

        Past the cap, such connections give way to new ones: a flood of silent connections
        cannot lock clients out, only connections busy with requests can fill the process.
        """
        for connection in self.connections:
            if isinstance(connection, BoundedHttpProtocol) and connection.idle:
                connection.end("evicted")
                return True
        return False

    @property
    def idle(self) -> bool:
        """Whether this connection is only waiting for (the rest of) a request head."""
        return (
            self.counted
            and self.reading_head
            and (self.cycle is None or self.cycle.response_complete)
            and not self.transport.is_closing()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.non_body_bytes += len(data)
        if not self.reading_head:
            self.body_moved_at = self.loop.time()
        super().data_received(data)
        if self.non_body_bytes > self.limits.max_head_bytes and not self.transport.is_closing():
            if self.reading_head:
                self.end("head_too_large", self.head_too_large())
            else:
                self.end("trailers_too_large", self.trailers_too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # uvicorn appends each piece of the URL to it: a bytearray grows in place.
        self.url = bytearray()  # type: ignore[assignment]
        if self.head_started is None:
            self.head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_started = None
        self.awaiting_body = True
        self.body_bytes = 0
        self.body_started = self.body_moved_at = self.loop.time()
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        # An allowance is spent on the chunk it comes with, never saved up for a trailer.
        self.non_body_bytes = max(0, self.non_body_bytes - CHUNK_FRAMING_BYTES)

    def on_body(self, body: bytes) -> None:
        # Never below zero: a buffer that ended one request and began the next was counted
        # before the first's end set the count back, and must not lend the second a margin.
        self.non_body_bytes = max(0, self.non_body_bytes - len(body))
        self.body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.reading_head = True
        self.non_body_bytes = 0
        self.awaiting_body = False
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn for a request httptools cannot parse."""
        invalid = MalformedRequest(
            "the request is not valid HTTP/1.1",
            detail=broken("request", "http_syntax"),
        )
        self.end("malformed", invalid)

    def handle_websocket_upgrade(self) -> None:
        self.release()
        super().handle_websocket_upgrade()

    def head_too_large(self) -> FleetlogError:
        if len(self.url) > self.limits.max_url_bytes:
            limit = self.limits.max_url_bytes
            return UriTooLong(
                f"the URL is over {limit} bytes", detail=broken("url", "max_url_bytes", limit)
            )
        limit = self.limits.max_head_bytes
        return HeadersTooLarge(
            f"the request head is over {limit} bytes",
            detail=broken("headers", "max_head_bytes", limit),
        )

    def trailers_too_large(self) -> FleetlogError:
        limit = self.limits.max_head_bytes
        return HeadersTooLarge(
            f"the request's trailers and chunk framing are over {limit} bytes",
            detail=broken("trailers", "max_head_bytes", limit),
        )

    def check_deadlines(self) -> None:
        """The connection's timer: close it past its deadline, or look again when one is due."""
        now = self.loop.time()
        due = self.next_due(now)
        if now < due:
            delay = min(due - now, self.limits.recheck)
            self.deadline = self.loop.call_later(delay, self.check_deadlines)
            return
        self.deadline = None
        if self.reading_head:
            self.head_expired()
        elif now >= self.body_moved_at + self.limits.body_timeout:
            self.end("body_timeout")
        else:
            self.end("body_too_slow")

    def next_due(self, now: float) -> float:
        """When the deadline of what the connection does now falls due; inf if it has none."""
        if self.reading_head:
            if self.head_started is None:
                return math.inf
            return self.head_started + self.limits.head_timeout
        if not self.awaiting_body:
            return math.inf
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            # fleetlog is the one waiting: the body's clocks start again once it reads on.
            self.body_started = self.body_moved_at = now
            self.body_bytes = 0
            return now + self.limits.body_timeout / 4
        return min(self.body_moved_at + self.limits.body_timeout, self.too_slow_at())

    def too_slow_at(self) -> float:
        """When the body, if no more of it comes, falls below the least rate past its grace."""
        owed = max(self.limits.body_timeout, self.body_bytes / self.limits.min_body_rate)
        return self.body_started + owed

    def head_expired(self) -> None:
        """Close a connection whose request head is not complete in time.

        It is answered with a 408 only if part of a head came: a silent one is just closed.
        """
        late = RequestTimeout(
            f"the request head did not arrive within {self.limits.head_timeout:g} s",
            detail=broken("headers", "head_timeout", self.limits.head_timeout),
        )
        self.end("head_timeout", late if self.non_body_bytes else None)

    def end(self, reason: str, error: FleetlogError | None = None) -> None:
        """Close the connection; answer `error` first if it can be the answer to its request.

        A request still being handled sees `http.disconnect` at once, as if the client had gone.
        """
        CONNECTIONS_CLOSED.labels(reason).inc()
        if error is not None and self.answerable:
            self.transport.write(rendered(error, self.server_state.default_headers))
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.disarm()
        self.transport.close()

    @property
    def answerable(self) -> bool:
        """Whether an answer now would be the only one to the request being read, or between two."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True
        # A request is in hand: only its own body, before its answer starts, may be refused.
        return not (self.reading_head or cycle.response_started or self.pipeline)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def release(self) -> None:
        """Forget this connection: no deadline left, and no longer counted as open."""
        self.disarm()
        if self.counted:
            self.counted = False
            OPEN_CONNECTIONS.dec()


def bounded_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """What `uvicorn.run(http=...)` takes; it pickles, so `--workers N` processes get it too."""
    # uvicorn calls the protocol class, and only calls it: a partial of it serves as well.
    return cast(
        "type[asyncio.Protocol]",
        partial(BoundedHttpProtocol, limits=ConnectionLimits.from_settings(settings)),
    )


def ensure_file_limit(max_connections: int) -> None:
    """Raise the open-file limit so the connection cap, not EMFILE, refuses connections first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FILE_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
