"""`fleetlog up` under load: an API process and a worker are killed with SIGKILL (and restarted
by `fleetlog up`); every acknowledged log is stored exactly once."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from redis.asyncio import Redis

from fleetlog.localstack.process import free_ports
from tests.deploy.load import Load, running_load
from tests.fixtures.pipeline import pipeline_settings, settings_env, wait_for
from tests.fixtures.process import FleetlogProcess
from tests.fixtures.servers import PostgresServer, RedisServer, fresh_database
from tests.test_pipeline_faults import drained

STARTUP_TIMEOUT_S = 60.0


class Up(FleetlogProcess):
    """`fleetlog up --api 2 --workers 2` on the suite's Redis and a database of its own."""

    def __init__(self, redis_url: str, database_url: str, tmp_path: Path, **env: str) -> None:
        # nginx's port and the two API processes' after it.
        self.port = free_ports(3)
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        settings = pipeline_settings(redis_url, database_url, tmp_path)
        super().__init__(
            ["up", "--api", "2", "--workers", "2", "--port", str(self.port)],
            env={**settings_env(settings), **env},
            log_path=tmp_path / "up.log",
        )

    def wait_up(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while "fleetlog is up" not in self.output():
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"fleetlog up did not come up:\n{self.output()}")
            time.sleep(0.05)

    def pid(self, name: str) -> int:
        """The pid of the process `fleetlog up` started last under that name."""
        return int(re.findall(rf"{name} started, pid (\d+)", self.output())[-1])

    def restarts(self, name: str) -> int:
        return self.output().count(f"{name} exited with -9; restarting it")

    async def stored(self, tag: str) -> Counter[str]:
        """How many times each log of this test is in the table."""
        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetch("SELECT message FROM logs WHERE message LIKE $1", f"{tag}-%")
        finally:
            await conn.close()
        return Counter(row["message"] for row in rows)


@pytest.fixture(scope="module")
def up(
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Up]:
    redis_server.flushall()
    with fresh_database(postgres_server) as database_url:
        process = Up(redis_server.url, database_url, tmp_path_factory.mktemp("up"))
        process.start()
        try:
            process.wait_up()
            yield process
        finally:
            assert process.proc is not None
            os.kill(process.proc.pid, signal.SIGTERM)
            assert process.proc.wait(timeout=60) == 0, process.output()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def assert_stored_once(up: Up, redis: Redis, load: Load) -> None:
    """Every acknowledged log stored once; any other only from a request that failed."""
    await wait_for(lambda: drained(redis), what="the workers to drain the streams")
    stored = await up.stored(load.tag)
    assert [message for message, times in stored.items() if times > 1] == []
    assert set(load.acknowledged) <= set(stored), "an acknowledged log is not stored"
    unacknowledged = set(stored) - set(load.acknowledged)
    assert unacknowledged <= {message for request in load.failed for message in request}


async def test_an_api_process_killed_under_load_fails_only_its_requests_in_flight(
    up: Up, redis: Redis
) -> None:
    async with running_load(up.url, tag="api") as load:
        await load.until_acknowledged(500)
        os.kill(up.pid("api-1"), signal.SIGKILL)
        await load.until_acknowledged(1_000)
    await assert_stored_once(up, redis, load)
    assert len(load.failed) <= load.senders
    assert up.restarts("api-1") == 1


async def test_a_worker_killed_under_load_and_restarted_loses_and_repeats_nothing(
    up: Up, redis: Redis
) -> None:
    async with running_load(up.url, tag="worker") as load:
        await load.until_acknowledged(500)
        os.kill(up.pid("worker-1"), signal.SIGKILL)
        await wait_for(lambda: restarted(up, "worker-1"), what="worker-1 restarted")
        await load.until_acknowledged(1_000)
    await assert_stored_once(up, redis, load)
    assert load.failed == []


async def restarted(up: Up, name: str) -> bool:
    return up.restarts(name) == 1


def test_up_needs_redis_and_postgresql() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLEETLOG_")}
    refused = subprocess.run(
        [sys.executable, "-m", "fleetlog", "up"], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "needs FLEETLOG_REDIS_URL and FLEETLOG_DATABASE_URL" in refused.stderr


def test_up_names_the_ports_in_use_and_starts_nothing(tmp_path: Path) -> None:
    port = free_ports(3)
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("FLEETLOG_")},
        # Never reached: the ports are checked before anything starts.
        "FLEETLOG_REDIS_URL": "redis://127.0.0.1:1",
        "FLEETLOG_DATABASE_URL": "postgresql://fleetlog@127.0.0.1:1/fleetlog",
        "FLEETLOG_WORKER_METRICS_PORT": "0",
        "FLEETLOG_DATA_DIR": str(tmp_path),
    }
    with socket.socket() as other:
        other.bind(("127.0.0.1", port + 2))
        other.listen()
        refused = subprocess.run(
            [sys.executable, "-m", "fleetlog", "up", "--api", "2", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_S,
        )
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    assert f"in use already: 127.0.0.1:{port + 2} (api-2)." in output
    assert "started, pid" not in output


def test_through_nginx_each_client_is_limited_by_the_address_nginx_saw(
    redis_server: RedisServer, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """nginx adds the peer's address to X-Forwarded-For and the API processes trust nginx
    alone: what a client writes there itself changes nothing (the per-address limit of
    refused sign-ins, shared by both API processes, sees the client's own address)."""
    burst = 3

    def refused_sign_in(source: str, forwarded_for: str) -> int:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport) as client:
            answer = client.post(
                f"{up.url}/api/auth/token",
                data={"username": "nobody", "password": "wrong"},
                headers={"X-Forwarded-For": forwarded_for},
            )
        return answer.status_code

    redis_server.flushall()
    with fresh_database(postgres_server) as database_url:
        up = Up(
            redis_server.url,
            database_url,
            tmp_path,
            FLEETLOG_ADDRESS_RATE="0.01",
            FLEETLOG_ADDRESS_BURST=str(burst),
        )
        up.start()
        try:
            up.wait_up()
            spoofing = [refused_sign_in("127.0.0.2", f"203.0.113.{i}") for i in range(burst + 1)]
            other_client = refused_sign_in("127.0.0.3", "203.0.113.0")
        finally:
            up.stop()
    assert spoofing == [401] * burst + [429]
    assert other_client == 401
