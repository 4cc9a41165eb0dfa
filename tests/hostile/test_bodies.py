"""Request bodies from strangers and careless clients: read only once the sender is known, held
within the process's budget, given back when done, and stored only when they arrived whole."""

import asyncio
import gzip
import json
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetlog.auth.principals import Scope
from tests.fixtures.auth import add_key, bearer, secure_settings
from tests.fixtures.process import running_server
from tests.fixtures.records import make_batch, make_log
from tests.fixtures.wire import LAST_CHUNK, chunk, connect, head, read_answer, read_until_closed

MIB = 1024 * 1024
BUDGET = 16 * MIB


@contextmanager
def serving_secured(data_dir: Path):
    """A real server with an ingest key and an admin key, its body budget at 16 MiB."""
    settings = secure_settings(data_dir)
    ingest = asyncio.run(add_key(settings, "devices", Scope.INGEST))
    admin = asyncio.run(add_key(settings, "admin", Scope.ADMIN))
    env = {"FLEETLOG_MAX_INFLIGHT_BODY_BYTES": str(BUDGET)}
    with running_server(data_dir, env=env) as server:
        yield server, ingest, admin


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    with serving_secured(tmp_path_factory.mktemp("bodies") / "data") as served:
        yield served


@pytest.fixture
def secured_alone(tmp_path):
    """The same, for one test: what it measures of the process is its own doing."""
    with serving_secured(tmp_path / "data") as served:
        yield served


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def settled_rss_mib(pid: int, *, within: float = 10.0) -> float:
    """The process's RSS once it has stopped growing for half a second: what was sent to it
    may still sit in socket buffers, read a moment later."""
    deadline = time.monotonic() + within
    peak, steady_since = rss_mib(pid), time.monotonic()
    while time.monotonic() - steady_since < 0.5 and time.monotonic() < deadline:
        time.sleep(0.05)
        now = rss_mib(pid)
        if now > peak + 1:
            peak, steady_since = now, time.monotonic()
    return peak


def rejected(url: str, reason: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fleetlog_ingest_rejected_total" and sample.labels["reason"] == reason
    )


def admitted(url: str, headers: dict[str, str]):
    """A connection whose POST of a body the server has agreed to read (100 Continue)."""
    sock = connect(url)
    sock.sendall(head("POST", "/api/logs/batch", {**headers, "Expect": "100-continue"}))
    if not sock.recv(4096).startswith(b"HTTP/1.1 100 "):
        sock.close()
        raise AssertionError("the body was not admitted")
    return sock


@pytest.mark.parametrize("path", ["/api/logs/batch", "/api/log", "/api/keys", "/nowhere"])
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_stranger_is_answered_before_any_body_byte(secured, path, framing):
    server, _, _ = secured
    declared = {"Transfer-Encoding": "chunked"}
    if framing == "content-length":
        declared = {"Content-Length": str(7 * MIB)}
    with connect(server.url, timeout=5) as sock:
        sock.sendall(head("POST", path, {"Content-Type": "application/json", **declared}))
        answer = read_answer(sock)
        assert answer.status == 401
        assert answer.json()["error"] == "unauthorized"
        assert answer.headers["connection"] == "close"
        read_until_closed(sock)


def test_a_key_without_the_right_is_answered_before_any_body_byte(secured):
    server, _, _ = secured
    reader = asyncio.run(add_key(secure_settings(server.data_dir), "reader", Scope.READ))
    headers = {**bearer(reader), "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    with connect(server.url, timeout=5) as sock:
        sock.sendall(head("POST", "/api/logs/batch", headers))
        answer = read_answer(sock)
        assert answer.status == 403
        assert answer.headers["connection"] == "close"
        read_until_closed(sock)


def test_bodies_past_the_budget_get_503_before_they_are_read(secured):
    server, key, _ = secured
    headers = {**bearer(key), "Content-Type": "application/json", "Content-Length": str(6 * MIB)}
    first, second = admitted(server.url, headers), admitted(server.url, headers)
    with connect(server.url, timeout=5) as third:
        third.sendall(head("POST", "/api/logs/batch", {**headers, "Expect": "100-continue"}))
        answer = read_answer(third)
    assert answer.status == 503
    assert answer.json()["error"] == "overloaded"
    assert int(answer.headers["retry-after"]) >= 1
    first.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            fourth = admitted(server.url, headers)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the budget of a closed upload was never freed"
    for sock in (second, fourth):
        sock.close()


def unfinished_upload(key: str, framing: str, size: int) -> bytes:
    """A POST of `size` bytes of body that never ends: the last chunk or byte never comes."""
    headers = {**bearer(key), "Content-Type": "application/json"}
    if framing == "chunked":
        request = head("POST", "/api/logs/batch", {**headers, "Transfer-Encoding": "chunked"})
        return request + chunk(b" " * 1024) * (size // 1024)
    request = head("POST", "/api/logs/batch", {**headers, "Content-Length": str(size + 1)})
    return request + b" " * size


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_memory_stays_within_the_budget_and_is_given_back(secured_alone, framing):
    server, key, _ = secured_alone
    pid = server.proc.pid
    before = rss_mib(pid)
    upload = unfinished_upload(key, framing, 2 * MIB)
    uploads = []
    for _ in range(100):
        sock = connect(server.url, timeout=5)
        try:
            sock.sendall(upload)
        except OSError:
            sock.close()
            continue
        uploads.append(sock)
    held = settled_rss_mib(pid) - before
    for sock in uploads:
        sock.close()
    assert held < BUDGET / MIB + 64, f"{held:.0f} MiB held for 200 MiB of unfinished bodies"
    deadline = time.monotonic() + 10
    while rss_mib(pid) - before > 32:
        assert time.monotonic() < deadline, f"{rss_mib(pid) - before:.0f} MiB kept after the end"
        time.sleep(0.1)


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_body_cut_off_before_its_end_stores_nothing(secured, framing):
    server, key, admin = secured
    device = f"cut-{framing}"
    body = json.dumps(make_batch(3, device_id=device)).encode()
    headers = {**bearer(key), "Content-Type": "application/json"}
    if framing == "chunked":
        request = head("POST", "/api/logs/batch", {**headers, "Transfer-Encoding": "chunked"})
        request += chunk(body)
    else:
        request = head("POST", "/api/logs/batch", {**headers, "Content-Length": str(len(body) + 9)})
        request += body
    cut_before = rejected(server.url, "incomplete_body")
    with connect(server.url) as sock:
        sock.sendall(request)
    with httpx.Client(base_url=server.url, headers=bearer(admin)) as read:
        deadline = time.monotonic() + 10
        while rejected(server.url, "incomplete_body") == cut_before:
            assert read.get(f"/api/logs/{device}").json()["total"] == 0, "a cut-off body stored"
            assert time.monotonic() < deadline, "the cut-off body was never refused"
            time.sleep(0.05)
        assert read.get(f"/api/logs/{device}").json()["total"] == 0


def test_a_whole_chunked_body_is_stored(secured):
    server, key, admin = secured
    body = json.dumps(make_batch(2, device_id="whole")).encode()
    request = head(
        "POST",
        "/api/logs/batch",
        {**bearer(key), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    with connect(server.url) as sock:
        sock.sendall(request + chunk(body[:10]) + chunk(body[10:]) + LAST_CHUNK)
        assert read_answer(sock).status == 200
    answer = httpx.get(f"{server.url}/api/logs/whole", headers=bearer(admin))
    assert answer.json()["total"] == 2


def test_a_transfer_coding_other_than_chunked_is_refused(secured):
    server, key, _ = secured
    body = gzip.compress(json.dumps(make_log(device_id="te")).encode())
    headers = {
        **bearer(key),
        "Content-Type": "application/json",
        "Transfer-Encoding": "gzip, chunked",
    }
    with connect(server.url) as sock:
        sock.sendall(head("POST", "/api/log", headers) + chunk(body) + LAST_CHUNK)
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.json()["error"] == "unsupported_transfer_coding"
    assert answer.json()["detail"][0]["field"] == "Transfer-Encoding"


def test_concatenated_gzip_members_are_one_body(secured):
    server, key, admin = secured
    body = json.dumps(make_batch(2, device_id="members")).encode()
    members = gzip.compress(body[:20]) + gzip.compress(body[20:])
    answer = httpx.post(
        f"{server.url}/api/logs/batch",
        content=members,
        headers={**bearer(key), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200, answer.text
    stored = httpx.get(f"{server.url}/api/logs/members", headers=bearer(admin)).json()
    assert stored["total"] == 2


@pytest.mark.parametrize("path", ["/api/log", "/api/logs/batch", "/api/keys", "/api/users"])
def test_invalid_json_is_the_same_400_on_ingest_and_admin_routes(secured, path):
    server, _, admin = secured
    answer = httpx.post(
        f"{server.url}{path}",
        content=b'{"name": ',
        headers={**bearer(admin), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "malformed_body"


@pytest.mark.parametrize("digits", [22, 5_000])
def test_integers_past_64_bits_get_one_answer_whatever_their_length(secured, digits):
    server, key, _ = secured
    log = json.dumps(make_log(device_id="ints", log_data={"n": 0})).encode()
    body = log.replace(b'"n": 0', b'"n": ' + b"9" * digits)
    answer = httpx.post(
        f"{server.url}/api/log",
        content=body,
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert {problem["rule"] for problem in answer.json()["detail"]} == {"int64_range"}


@pytest.mark.parametrize("path", ["/health", "/metrics", "/"])
def test_a_body_on_a_route_that_reads_none_is_not_a_reason_to_refuse(secured, path):
    server, _, _ = secured
    with connect(server.url, timeout=5) as sock:
        sock.sendall(head("GET", path, {"Content-Length": "5"}) + b"hello")
        assert read_answer(sock).status == 200
