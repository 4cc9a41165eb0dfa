"""Reads against a real `fleetlog serve` over raw sockets: every id ingest accepts is readable,
and no path trick reads another device's logs."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fleetlog.config import Settings
from fleetlog.event_time import FIRST, LAST
from fleetlog.keys import Keys
from fleetlog.query import Cursors
from fleetlog.records import encode_records, epoch_us
from fleetlog.redis_client import connect
from fleetlog.store.bulk import BulkWriter, Packed
from fleetlog.store.partitions import partition_name
from tests.fixtures import wire
from tests.fixtures.pipeline import Table, make_record, pipeline_settings, settings_env, wait_for
from tests.fixtures.process import FleetlogProcess, Server, running_server
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
    "two\nlines\r": ["/api/logs/two%0Alines%0D"],
}


def raw_get(server: Server, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET sent byte for byte as given (no client normalises the path), Host set by us."""
    with wire.connect(server.url) as sock:
        sock.sendall(wire.head("GET", path, {"Host": "evil.example", "Connection": "close"}))
        answer = wire.read_answer(sock)
    return answer.status, answer.headers, answer.body


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


def test_an_answer_is_bounded_in_bytes_and_the_rest_is_a_cursor_away(tmp_path):
    megabyte_log = make_log(device_id="fat", log_data={"blob": "x" * 1_000_000})
    with running_server(tmp_path / "data") as server, httpx.Client(base_url=server.url) as http:
        for _ in range(12):
            assert http.post("/api/log", json=megabyte_log).status_code == 200
        seen, params = 0, {"limit": 1000}
        while True:
            answer = http.get("/api/logs/fat", params=params, timeout=30)
            assert len(answer.content) <= 8 * 1024 * 1024
            body = answer.json()
            seen += body["total"]
            if "next_cursor" not in body:
                break
            params["cursor"] = body["next_cursor"]
    assert seen == 12


@contextmanager
def pipeline_processes(settings: Settings, tmp_path: Path, **env: str) -> Iterator[Server]:
    """`fleetlog worker` and `fleetlog serve` in Redis mode, as separate processes."""
    environment = {**settings_env(settings), **env}
    worker = FleetlogProcess(["worker"], env=environment, log_path=tmp_path / "worker.log")
    worker.start()
    try:
        with running_server(tmp_path / "serve", env=environment) as server:
            yield server
    finally:
        worker.stop()


async def read(http: httpx.AsyncClient, device_id: str, **params: int) -> dict:
    answer = await http.get(f"/api/logs/{device_id}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_cached_reads_never_make_ingest_fail(fresh_redis, pg_url, tmp_path):
    settings = pipeline_settings(fresh_redis.url, pg_url, tmp_path)
    batch = {"logs": [make_log(device_id="big", log_data={"b": "x" * 50_000})] * 10}
    redis = connect(fresh_redis.url)
    with pipeline_processes(settings, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            for _ in range(4):
                assert (await http.post("/api/logs/batch", json=batch)).status_code == 200

            async def stored() -> bool:
                return (await read(http, "big", limit=1000))["total"] == 40

            await wait_for(stored, what="the large device's logs stored")
            used = (await redis.info("memory"))["used_memory"]
            await redis.config_set("maxmemory", str(used + 6 * 1024 * 1024))
            for limit in range(1, 201):
                await read(http, "big", limit=limit)
            small = {"logs": [make_log(device_id="small", log_data={"b": "y" * 1000})] * 100}
            for _ in range(20):
                answer = await http.post("/api/logs/batch", json=small)
                assert answer.status_code == 200, answer.text
    await redis.aclose()


async def bumped_twice(redis_url: str) -> bool:
    async with connect(redis_url) as redis:
        return int(await redis.get(Keys().cache_generation()) or 0) >= 2


async def test_the_worker_keeps_partitions_and_retention_retires_cached_answers(
    redis_url, pg_url, tmp_path
):
    settings = pipeline_settings(redis_url, pg_url, tmp_path)
    today = datetime.now(UTC)
    expired = today - timedelta(days=10)
    writer = BulkWriter(pg_url, max_connections=2)
    await writer.open()
    await writer.maintain(ahead=0, today=expired)
    old = [make_record(device_id="gone", message="expired", ts=expired)]
    await writer.write([Packed.of(0, "1-0", encode_records(old))])
    await writer.close()
    table = Table(pg_url)

    async def partitions() -> set[str]:
        names = await table.fetchval(
            "SELECT string_agg(c.relname, ',') FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'logs'::regclass"
        )
        return set(names.split(","))

    env = {"FLEETLOG_RETENTION_DAYS": "7", "FLEETLOG_PARTITIONS_AHEAD": "3"}
    async with httpx.AsyncClient(timeout=30) as http:
        with running_server(tmp_path / "reader", env=settings_env(settings)) as reader:
            # The device gets no new log: only the worker's generation bumps retire its cached
            # answer, once as it starts and once more after retention dropped the partition.
            url = f"{reader.url}/api/logs/gone"
            assert (await http.get(url)).json()["data"][0]["message"] == "expired"
            assert (await http.get(url)).json()["source"] == "cache"
            with pipeline_processes(settings, tmp_path, **env) as server:
                fresh = make_log(device_id="cam", message="fresh")
                assert (await http.post(f"{server.url}/api/log", json=fresh)).status_code == 200

                async def retired() -> bool:
                    return (await http.get(url)).json()["data"] == []

                async def stored() -> bool:
                    return (await http.get(f"{reader.url}/api/logs/cam")).json()["total"] == 1

                await wait_for(retired, what="the expired log gone from the cached answers")
                await wait_for(
                    lambda: bumped_twice(redis_url), what="a bump after retention dropped logs"
                )
                await wait_for(stored, what="a new log stored by the worker")
                ahead = {partition_name((today + timedelta(days=d)).date()) for d in range(4)}

                async def kept_ahead() -> bool:
                    # Each day's partition is made in a transaction of its own, holding `logs`
                    # exclusively: the worker's COPYs may go between them.
                    return ahead <= await partitions()

                await wait_for(kept_ahead, what="the coming days' partitions")
                assert partition_name(expired.date()) not in await partitions()


SECRET = "a-jwt-secret-of-the-tests-0123456789"
MAX_ID = 2**63 - 1


def forged(device_id: str, raw: bytes, *, secret: str = SECRET) -> str:
    """A cursor signed as the server signs them, with the server's secret unless told."""
    return Cursors(secret).sign(device_id, raw)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {"FLEETLOG_JWT_SECRET": SECRET}
    if request.param == "postgresql":
        redis_url, pg_url = (request.getfixturevalue(name) for name in ("redis_url", "pg_url"))
        env |= settings_env(pipeline_settings(redis_url, pg_url, tmp_path))
    with running_server(tmp_path / "serve", env=env) as started:
        yield started


def test_a_forged_cursor_gets_400_naming_it_never_a_500(store_server):
    first, last = epoch_us(FIRST), epoch_us(LAST)
    refused = [b"0.%d" % 2**70, b"0.%d" % (MAX_ID + 1), b"0.0", b"0.-1", b"%d.1" % (last + 1)]
    refused += [b"%d.1" % (first - 1), b"%d.1" % 2**70, b"1.1.1", b"0. 1", b"0.1_0"]
    with httpx.Client(base_url=store_server.url, timeout=30) as http:
        for raw in refused:
            answer = http.get("/api/logs/d1", params={"cursor": forged("d1", raw)})
            assert answer.status_code == 400, (raw, answer.status_code, answer.text)
            body = answer.json()
            assert body["error"] == "invalid_parameter"
            assert [problem["field"] for problem in body["detail"]] == ["cursor"]
        cursor = forged("d1", b"0.1", secret="anyone's guess of the server's secret")
        assert http.get("/api/logs/d1", params={"cursor": cursor}).status_code == 400
        for raw in [b"0.%d" % MAX_ID, b"%d.1" % first, b"%d.%d" % (last, MAX_ID)]:
            answer = http.get("/api/logs/d1", params={"cursor": forged("d1", raw)})
            assert answer.status_code == 200, (raw, answer.status_code, answer.text)


@pytest.mark.parametrize("path", ["/health/", "/api/stats/", "//evil.example/health"])
def test_no_path_is_redirected_whatever_the_host_header_says(server, path):
    status, headers, body = raw_get(server, path)
    assert status == 404
    assert json.loads(body)["error"] == "not_found"
    assert "location" not in headers
