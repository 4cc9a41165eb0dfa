"""Slow, silent, unending and malformed connections against a real `fleetlog serve`."""

import json
import socket
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetlog.api.connections import CHUNK_FRAMING_BYTES
from tests.fixtures.process import running_server
from tests.fixtures.records import make_log

HEAD_BOUND = 64 * 1024  # FLEETLOG_MAX_HEAD_BYTES's default
# Deadlines of the servers below, small so that a test waits seconds, not minutes.
DEADLINE_S = 1.0
# How long a test waits for the server to act; a server without the deadline never does.
PATIENCE_S = DEADLINE_S + 4.0
# The module server's least body rate: a steady slow body beats it, a trickle does not.
MIN_BODY_RATE = 20


def connect(server, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE_S)
    if first:
        sock.sendall(first)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """All the server sends until it closes; a socket timeout if it never does."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_answer(sock: socket.socket) -> int:
    """Read one whole answer off a kept-alive connection; its status."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1])


def over_the_bound(start: bytes) -> bytes:
    """A head one byte past the bound: the server has read all of it when it answers."""
    return start + b"a" * (HEAD_BOUND + 1 - len(start))


def send_until_cut_off(sock: socket.socket, limit: int) -> int:
    """Send filler until the server closes the connection (or `limit` bytes); bytes sent."""
    sent = 0
    try:
        while sent < limit:
            sock.sendall(b"a" * 65536)
            sent += 65536
    except OSError:
        return sent
    return sent


def trickle_until_closed(sock: socket.socket, *, every: float) -> bytes:
    """Send a byte each `every` s until the server answers or closes; fail past the patience."""
    sock.settimeout(every)
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        sock.sendall(b" ")
        try:
            return sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return b""
    raise AssertionError("the server let the body trickle on")


def answer_of(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, json.loads(body)


def closed_by_server(sock: socket.socket) -> tuple[bytes, float]:
    started = time.monotonic()
    with sock:
        return read_until_closed(sock), time.monotonic() - started


def metric(server, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def closures(server, reason: str) -> float:
    return metric(server, "fleetlog_connections_closed_total", reason=reason)


def wait_for(condition, timeout: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {
        "FLEETLOG_HEAD_TIMEOUT": str(DEADLINE_S),
        "FLEETLOG_BODY_TIMEOUT": str(DEADLINE_S),
        "FLEETLOG_MIN_BODY_RATE": str(MIN_BODY_RATE),
    }
    with running_server(tmp_path_factory.mktemp("connections") / "data", env=env) as running:
        yield running


POST_HEAD = (
    b"POST /api/log HTTP/1.1\r\nHost: fleetlog\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n"
)


class TestDeadlines:
    def test_a_silent_connection_is_closed_after_the_head_deadline(self, server):
        received, waited = closed_by_server(connect(server))
        assert received == b""
        assert waited < PATIENCE_S

    @pytest.mark.parametrize(
        "partial",
        [b"GET /hea", b"GET /health HTTP/1.1\r\nHost: fleetlog\r\nX-Slow: abc"],
        ids=["mid_request_line", "mid_headers"],
    )
    def test_a_head_stopped_midway_gets_408_and_is_closed(self, server, partial):
        before = metric(server, "fleetlog_connections_closed_total", reason="head_timeout")
        received, _ = closed_by_server(connect(server, partial))
        status, headers, body = answer_of(received)
        assert status == 408
        assert headers["connection"] == "close"
        assert body["error"] == "request_timeout"
        assert body["detail"] == [{"field": "headers", "rule": "head_timeout", "limit": DEADLINE_S}]
        after = metric(server, "fleetlog_connections_closed_total", reason="head_timeout")
        assert after == before + 1

    def test_a_body_stopped_midway_is_closed(self, server):
        before = closures(server, "body_timeout")
        body = json.dumps(make_log(device_id="stalled")).encode()
        sock = connect(server, POST_HEAD % len(body) + body[:10])
        received, _ = closed_by_server(sock)
        assert received == b""
        assert closures(server, "body_timeout") == before + 1

    def test_a_body_that_trickles_below_the_least_rate_is_closed(self, server):
        before = closures(server, "body_too_slow")
        with connect(server, POST_HEAD % 10_000) as sock:
            # A byte four times per deadline: never silent long enough for the body deadline.
            received = trickle_until_closed(sock, every=DEADLINE_S / 4)
        assert received == b""
        assert closures(server, "body_too_slow") == before + 1

    def test_a_body_that_keeps_moving_outlives_the_deadline(self, server):
        body = json.dumps(make_log(device_id="slow-but-steady")).encode()
        pieces = [body[i : i + len(body) // 4 + 1] for i in range(0, len(body), len(body) // 4 + 1)]
        with connect(server, POST_HEAD % len(body)) as sock:
            for piece in pieces:
                time.sleep(DEADLINE_S / 2)
                sock.sendall(piece)
            assert read_answer(sock) == 200
        assert len(pieces) * DEADLINE_S / 2 > DEADLINE_S

    def test_a_keep_alive_connection_gets_a_fresh_head_deadline(self, server):
        with connect(server) as sock:
            for _ in range(3):
                time.sleep(DEADLINE_S / 2)
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: fleetlog\r\n\r\n")
                assert read_answer(sock) == 200


class TestUnendingHeads:
    @pytest.mark.parametrize(
        ("start", "status", "code"),
        [
            (b"GET /health HTTP/1.1\r\nHost: fleetlog\r\nX-Big: ", 431, "headers_too_large"),
            (b"GET /", 414, "uri_too_long"),
        ],
        ids=["header", "url"],
    )
    def test_a_head_past_the_bound_is_answered_and_closed(self, server, start, status, code):
        received, _ = closed_by_server(connect(server, over_the_bound(start)))
        answered, headers, body = answer_of(received)
        assert answered == status
        assert headers["connection"] == "close"
        assert body["error"] == code

    def test_an_unending_header_does_not_stall_the_server(self, server):
        with connect(server, b"GET / HTTP/1.1\r\nX-Big: ") as sock:
            sent = send_until_cut_off(sock, 256 * 1024 * 1024)
        # Cut off within a few socket buffers of the 64 KiB bound, not after 256 MB.
        assert sent < 32 * 1024 * 1024
        assert httpx.get(f"{server.url}/health", timeout=PATIENCE_S).status_code == 200


# The sign-in form is read from anyone: what a stranger can send.
CHUNKED_SIGN_IN = (
    b"POST /api/auth/token HTTP/1.1\r\nHost: fleetlog\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
)
LAST_CHUNK = b"5\r\nab=cd\r\n0\r\n"


class TestChunkFraming:
    def test_a_trailer_past_the_bound_is_answered_and_closed(self, server):
        before = closures(server, "trailers_too_large")
        start = CHUNKED_SIGN_IN + LAST_CHUNK + b"X-Big: "
        # The body's bytes are not counted, and each chunk's framing is allowed for.
        bound = HEAD_BOUND + len(b"ab=cd") + 2 * CHUNK_FRAMING_BYTES
        received, _ = closed_by_server(connect(server, start + b"a" * (bound + 1 - len(start))))
        status, headers, body = answer_of(received)
        assert status == 431
        assert headers["connection"] == "close"
        assert body["error"] == "headers_too_large"
        assert body["detail"] == [
            {"field": "trailers", "rule": "max_head_bytes", "limit": HEAD_BOUND}
        ]
        assert closures(server, "trailers_too_large") == before + 1

    @pytest.mark.parametrize(
        "start",
        [CHUNKED_SIGN_IN + LAST_CHUNK + b"X-Big: ", CHUNKED_SIGN_IN + b"1;ext="],
        ids=["trailer", "chunk_extension"],
    )
    def test_unending_chunk_framing_is_cut_off(self, server, start):
        before = closures(server, "trailers_too_large")
        with connect(server, start) as sock:
            sent = send_until_cut_off(sock, 64 * 1024 * 1024)
        # Cut off within a few socket buffers of the 64 KiB bound, not after 64 MB.
        assert sent < 32 * 1024 * 1024
        assert httpx.get(f"{server.url}/health", timeout=PATIENCE_S).status_code == 200
        wait_for(lambda: closures(server, "trailers_too_large") == before + 1)


def test_server_processes_of_serve_workers_keep_the_bounds(tmp_path):
    env = {"FLEETLOG_HEAD_TIMEOUT": str(DEADLINE_S)}
    with running_server(tmp_path / "data", workers=2, env=env) as server:
        silent = [connect(server) for _ in range(4)]
        for sock in silent:
            assert closed_by_server(sock)[0] == b""
        received, _ = closed_by_server(connect(server, over_the_bound(b"GET / HTTP/1.1\r\nX: ")))
        assert answer_of(received)[0] == 431


class TestMalformed:
    @pytest.mark.parametrize(
        "request_bytes",
        [
            b"POST /api/log HTTP/1.1\r\nHost: fleetlog\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 5\r\n\r\n0\r\n\r\n",
            b"GET /health HTTP/1.1\nHost: fleetlog\n\n",
            b"GET /health HTTP/1.1\r\nHost: fleet log\r\nBad Header\r\n\r\n",
        ],
        ids=["chunked_with_content_length", "bare_lf", "broken_header_line"],
    )
    def test_malformed_http_gets_a_json_400(self, server, request_bytes):
        received, _ = closed_by_server(connect(server, request_bytes))
        status, headers, body = answer_of(received)
        assert status == 400
        assert headers["content-type"] == "application/json"
        assert body["error"] == "malformed_request"
        assert body["detail"] == [{"field": "request", "rule": "http_syntax"}]


CAP = 10
AWAITING_BODY = (
    b"POST /api/log HTTP/1.1\r\nHost: fleetlog\r\nContent-Type: application/json\r\n"
    b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n"
)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A server with room for few connections, whose deadlines outlast each test."""
    env = {
        "FLEETLOG_MAX_CONNECTIONS": str(CAP),
        "FLEETLOG_HEAD_TIMEOUT": "60",
        "FLEETLOG_BODY_TIMEOUT": "60",
    }
    with running_server(tmp_path_factory.mktemp("capped") / "data", env=env) as running:
        yield running


def open_connections(server) -> float:
    with httpx.Client() as http:
        text = http.get(f"{server.url}/metrics", headers={"Connection": "close"}).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fleetlog_open_connections"
    )


class TestConnectionCap:
    def test_a_flood_of_silent_connections_gives_way_to_clients(self, small_server):
        flood = [connect(small_server, b"GET /hea") for _ in range(3 * CAP)]
        try:
            for _ in range(5):
                answer = httpx.get(f"{small_server.url}/health", headers={"Connection": "close"})
                assert answer.status_code == 200
            assert open_connections(small_server) <= CAP
            evicted = metric(small_server, "fleetlog_connections_closed_total", reason="evicted")
            assert evicted >= 2 * CAP
        finally:
            for sock in flood:
                sock.close()

    def test_past_the_cap_of_busy_connections_new_ones_get_503(self, small_server):
        wait_for(lambda: open_connections(small_server) == 1)  # the one asking
        busy = [connect(small_server, AWAITING_BODY) for _ in range(CAP)]
        try:
            # 100 Continue: the server has the whole head and waits for the body.
            assert all(sock.recv(1024).startswith(b"HTTP/1.1 100 ") for sock in busy)
            received, _ = closed_by_server(connect(small_server))
            status, headers, answer = answer_of(received)
            assert status == 503
            assert headers["retry-after"] == "1"
            assert answer["error"] == "unavailable"
        finally:
            for sock in busy:
                sock.close()
        wait_for(lambda: open_connections(small_server) == 1)
        refused = metric(small_server, "fleetlog_connections_closed_total", reason="over_capacity")
        assert refused >= 1
        assert httpx.get(f"{small_server.url}/health").status_code == 200
