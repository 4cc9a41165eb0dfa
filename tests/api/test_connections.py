"""The bounded HTTP protocol in this process: its limits, its answers, and whom it waits for."""

import asyncio
import json
import pickle
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import uvicorn
from uvicorn.server import ServerState

from fleetlog.api.connections import (
    BoundedHttpProtocol,
    ConnectionLimits,
    bounded_protocol,
    ensure_file_limit,
    rendered,
)
from fleetlog.config import Settings
from fleetlog.errors import Unavailable

BODY_TIMEOUT_S = 0.3
LIMITS = ConnectionLimits(
    max_head_bytes=64 * 1024,
    max_url_bytes=8 * 1024,
    head_timeout=5.0,
    body_timeout=BODY_TIMEOUT_S,
    max_connections=10,
    # Far above what reaches an app that lets its body wait: only fleetlog's own wait is forgiven.
    min_body_rate=1024 * 1024,
    retry_after=1.0,
)


def test_the_protocol_reaches_spawned_server_processes_with_its_limits():
    settings = Settings(_env_file=None, max_head_bytes=1000, head_timeout=2, max_connections=7)
    protocol = pickle.loads(pickle.dumps(bounded_protocol(settings)))
    assert isinstance(protocol, partial)
    assert protocol.func is BoundedHttpProtocol
    assert protocol.keywords["limits"] == ConnectionLimits.from_settings(settings)
    assert protocol.keywords["limits"].head_timeout == 2.0


def test_an_error_is_rendered_as_the_api_renders_it_and_closes():
    answer = rendered(Unavailable("busy", retry_after=2), [(b"server", b"fleetlog")])
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert status_line == "HTTP/1.1 503 Service Unavailable"
    assert headers["server"] == "fleetlog"
    assert headers["retry-after"] == "2"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {"error": "unavailable", "message": "busy"}


def test_the_file_limit_is_raised_to_make_room_for_the_connections():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.skip("the hard open-file limit is too low to raise the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        ensure_file_limit(1000)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 1000
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def read_body_later(scope, receive, send) -> None:
    """An app that lets the body wait longer than the body deadline before reading it."""
    await asyncio.sleep(3 * BODY_TIMEOUT_S)
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    answer = json.dumps({"read": size, "disconnected": message["type"] == "http.disconnect"})
    length = str(len(answer)).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
    )
    await send({"type": "http.response.body", "body": answer.encode()})


@asynccontextmanager
async def serving(app) -> AsyncIterator[int]:
    """The protocol on a free port of this loop, in front of `app`."""
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        partial(BoundedHttpProtocol, config, state, {}, limits=LIMITS), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for connection in list(state.connections):
            connection.shutdown()
        await server.wait_closed()


async def exchange(port: int, head: bytes, body: bytes, *, pause: float = 0.0) -> dict:
    """Send a request, its body in two halves `pause` s apart; the JSON answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        if b"100-continue" in head:
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
        writer.write(body[: len(body) // 2])
        await asyncio.sleep(pause)
        writer.write(body[len(body) // 2 :])
        answer = await reader.read()
    finally:
        writer.close()
    return json.loads(answer.partition(b"\r\n\r\n")[2])


class TestBodyDeadlineWaitsForTheApp:
    async def test_a_body_held_back_by_flow_control_is_not_cut(self):
        body = b"x" * (1024 * 1024)  # past uvicorn's high-water mark: reading pauses
        head = b"POST / HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        async with serving(read_body_later) as port:
            answer = await exchange(port, head, body)
        assert answer == {"read": len(body), "disconnected": False}

    async def test_a_client_waiting_for_100_continue_is_not_cut(self):
        body = b"x" * 100
        head = (
            b"POST / HTTP/1.1\r\nConnection: close\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        async with serving(read_body_later) as port:
            # Slower than the least rate, within the grace that starts once the client may send.
            answer = await exchange(port, head, body, pause=2 * BODY_TIMEOUT_S / 3)
        assert answer == {"read": len(body), "disconnected": False}
