"""Reads against a real `fleetlog serve` over raw sockets: every id ingest accepts is readable,
and no path trick reads another device's logs."""

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.fixtures.process import Server, running_server
from tests.fixtures.records import make_log

# Each device id ingest accepts, with the raw request paths that must read exactly it.
ID_PATHS = {
    "x//": ["/api/logs/x%2F/", "/api/logs/x//"],
    "a/b": ["/api/logs/a%2Fb", "/api/logs/a/b", "/api/logs/a%2fb"],
    "x/": ["/api/logs/x%2F", "/api/logs/x/"],
    "x": ["/api/logs/x"],
    "/lead": ["/api/logs/%2Flead"],
    "..": ["/api/logs/.."],
    "a/../x": ["/api/logs/a/../x", "/api/logs/a%2F..%2Fx"],
    "100%": ["/api/logs/100%25"],
    "100%25": ["/api/logs/100%2525"],
    "q?#": ["/api/logs/q%3F%23"],
    "sp ace": ["/api/logs/sp%20ace"],
    "ünï": ["/api/logs/%C3%BCn%C3%AF"],
    "batch": ["/api/logs/batch"],
}


def raw_get(server: Server, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET sent byte for byte as given (no client normalises the path), Host set by us."""
    request = f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data_dir: Path = tmp_path_factory.mktemp("reads") / "data"
    with running_server(data_dir) as started, httpx.Client(base_url=started.url) as http:
        for device_id in ID_PATHS:
            log = make_log(device_id=device_id, message=f"from {device_id}")
            assert http.post("/api/log", json=log).status_code == 200
        yield started


@pytest.mark.parametrize(
    ("device_id", "path"), [(d, p) for d, paths in ID_PATHS.items() for p in paths]
)
def test_every_accepted_id_is_read_as_itself(server, device_id, path):
    status, headers, body = raw_get(server, path)
    assert status == 200, (status, headers.get("location"), body[:200])
    rows = json.loads(body)["data"]
    assert [row["device_id"] for row in rows] == [device_id]


@pytest.mark.parametrize("path", ["/api/logs/x%2F", "/api/logs/x/", "/api/logs/x%2F/"])
def test_no_read_is_redirected_to_another_device(server, path):
    status, headers, _ = raw_get(server, path)
    assert status != 307
    assert "location" not in headers


def test_an_empty_id_is_refused_naming_the_field(server):
    status, _, body = raw_get(server, "/api/logs/")
    assert status == 422
    (problem,) = json.loads(body)["detail"]
    assert problem["field"] == "device_id"
