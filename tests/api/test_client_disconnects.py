"""A client that leaves mid-body is counted in /metrics, never logged as fleetlog's error."""

import json
import socket
import time
from collections.abc import Callable

import httpx

from tests.fixtures.process import running_server
from tests.fixtures.records import make_log


def send_half_and_close(port: int) -> None:
    """What a shipper stopping mid-request does: half its body, then the connection closed."""
    body = json.dumps(make_log()).encode()
    head = (
        b"POST /api/log HTTP/1.1\r\nHost: fleetlog\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(body) * 2)
    )
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(head + body)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def disconnects(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('fleetlog_client_disconnects_total{route="/api/log"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_gone_mid_body_is_counted_not_an_error(tmp_path):
    env = {"FLEETLOG_LOG_FORMAT": "json", "FLEETLOG_ACCESS_LOG": "true"}
    with (
        running_server(tmp_path / "data", env=env) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        send_half_and_close(server.port)
        wait_until(lambda: disconnects(http.get("/metrics").text) == 1)
        assert http.post("/api/log", json=make_log()).status_code == 200
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "fleetlog.access"]
    assert [line["status"] for line in access if line["route"] == "/api/log"] == [400, 200]
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert "Traceback" not in server.output()
    # uvicorn's own lines take the same JSON shape as fleetlog's.
    assert any(line["logger"].startswith("uvicorn") for line in lines)
