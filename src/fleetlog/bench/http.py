"""The smallest HTTP/1.1 client that can drive fleetlog: keep-alive, one request at a time.

Why not httpx or aiohttp: the load generator shares two cores with the server it measures, and a
general client spends tens of microseconds per request building headers, parsing every answer
header and running coroutines; the reference's aiohttp client took ~30 % of a core. Here each
request is one pre-encoded `bytes` written to the socket, and each answer costs one callback
that finds the status and `Content-Length`, the only framing fleetlog and uvicorn use for these
answers (a chunked answer is refused as a protocol error). No coroutine, no header dict, no
body decoding: the per-request cost is a write and a `data_received`.
"""

import asyncio
from collections.abc import Sequence
from typing import Protocol, cast

HEADER_END = b"\r\n\r\n"
CONTENT_LENGTH = b"\ncontent-length:"


class ProtocolError(Exception):
    """An answer this client cannot frame."""


class Listener(Protocol):
    def answered(self, connection: "Connection", request: int, status: int) -> None: ...

    def lost(self, connection: "Connection") -> None: ...

    def broken(self, error: Exception) -> None: ...


def frame_request(
    *, host: str, path: str, body: bytes, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """A complete POST request, ready to write on a keep-alive connection."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def content_length(head: bytes) -> int:
    """The Content-Length of an answer head (status line and headers, without the blank line);
    0 for a 204 (Loki push's success), which has no content and need not say so."""
    if head[9:12] == b"204":
        return 0
    start = head.lower().find(CONTENT_LENGTH)
    if start < 0:
        raise ProtocolError("an answer without Content-Length (chunked answers are not read)")
    stop = head.find(b"\r", start)
    return int(head[start + len(CONTENT_LENGTH) : stop if stop >= 0 else None])


class Connection(asyncio.Protocol):
    """One keep-alive connection; tells its listener when an answer is complete."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.expected = -1  # bytes of the answer in flight, known once its head is read
        self.request = -1  # the request in flight, -1 when idle
        self.started = 0.0
        self.status = 0
        self.answers = 0
        self.timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: int, data: bytes, started: float) -> None:
        assert self.transport is not None
        self.request = request
        self.started = started
        self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if self.expected < 0:
            end = buffer.find(HEADER_END)
            if end < 0:
                self.buffer = buffer
                return
            try:
                self.expected = end + len(HEADER_END) + content_length(buffer[:end])
                self.status = int(buffer[9:12])
            except (ProtocolError, ValueError) as exc:
                self.listener.broken(exc)
                self.abort()
                return
        if len(buffer) < self.expected:
            self.buffer = buffer
            return
        self.buffer = buffer[self.expected :]
        self.expected = -1
        request, self.request = self.request, -1
        self.answers += 1
        self.listener.answered(self, request, self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.listener.lost(self)
