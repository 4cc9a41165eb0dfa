"""Health and readiness of real `fleetlog serve` processes whose store cannot take writes.

A full disk is a small tmpfs filled to the last byte; a full Redis is a real redis-server over
its `maxmemory` under `noeviction` (the test servers' policy). In both, ingest answers 503 with
Retry-After, /ready answers 503 naming the checks that fail, and /health stays 200 but says
"degraded".
"""

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.fixtures.pipeline import pipeline_settings, settings_env, wait_for
from tests.fixtures.process import Server, running_server
from tests.fixtures.records import make_log

DISK_BYTES = 8 * 1024 * 1024
FILLER_CHUNK = 64 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 8 MiB tmpfs, unmounted after the test."""
    mount_point = tmp_path / "data"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    """Write a file on `disk` until no byte is left; returns it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * FILLER_CHUNK
        while chunk:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
    return filler


async def readiness(server: Server) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.get("/ready")


def refused(server: Server, *names: str):
    async def condition() -> bool:
        answer = await readiness(server)
        checks = answer.json()["checks"]
        return answer.status_code == 503 and not any(checks[name] for name in names)

    return condition


def ready(server: Server):
    async def condition() -> bool:
        return (await readiness(server)).status_code == 200

    return condition


async def assert_refuses_writes(server: Server, *, failing: set[str]) -> None:
    """Ingest gets 503 + Retry-After; /ready 503 and /health 200 "degraded" name `failing`."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post("/api/log", json=make_log())
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["error"] == "store_unavailable"
        await wait_for(refused(server, *failing), what=f"/ready to refuse on {failing}")
        health = await http.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert {name for name, ok in health.json()["checks"].items() if not ok} == failing


async def assert_recovers(server: Server) -> None:
    """Once there is room again, the next write is stored and the process is ready."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.post("/api/log", json=make_log())).status_code == 200
        await wait_for(ready(server), what="/ready to answer 200 again")
        assert (await http.get("/health")).json()["status"] == "healthy"


class TestFullDisk:
    async def test_a_full_disk_makes_ingest_503_and_the_process_not_ready(self, small_disk):
        env = {"FLEETLOG_MIN_FREE_DISK_BYTES": str(1024 * 1024)}
        with running_server(small_disk, env=env) as server:
            assert (await readiness(server)).status_code == 200
            filler = fill(small_disk)
            await assert_refuses_writes(server, failing={"commit", "disk"})
            filler.unlink()
            await assert_recovers(server)

    async def test_a_failed_commit_alone_makes_the_process_not_ready(self, small_disk):
        env = {"FLEETLOG_MIN_FREE_DISK_BYTES": "0"}
        with running_server(small_disk, env=env) as server:
            filler = fill(small_disk)
            # Nothing has failed yet: the disk check is off, and no commit was tried.
            assert (await readiness(server)).status_code == 200
            await assert_refuses_writes(server, failing={"commit"})
            filler.unlink()
            await assert_recovers(server)

    async def test_free_disk_under_the_setting_makes_the_process_not_ready(self, tmp_path):
        env = {"FLEETLOG_MIN_FREE_DISK_BYTES": str(2**62)}
        with running_server(tmp_path / "data", env=env) as server:
            answer = await readiness(server)
            async with httpx.AsyncClient(base_url=server.url) as http:
                stored = await http.post("/api/log", json=make_log())
        assert answer.status_code == 503
        assert answer.json()["checks"]["disk"] is False
        assert answer.json()["checks"]["commit"] is True
        # The setting is a readiness threshold: writes go on while the store takes them.
        assert stored.status_code == 200


FILLER_KEYS = 40
FILLER_VALUE = b"x" * 100_000


def fill_redis(url: str) -> None:
    """Fill Redis with 4 MB, then set its maxmemory 1 MiB under what it uses: writes get OOM."""
    with redis.Redis.from_url(url) as client:
        for i in range(FILLER_KEYS):
            client.set(f"filler:{i}", FILLER_VALUE)
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", used - 1024 * 1024)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("one-more", "x")


def empty_redis(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.delete(*(f"filler:{i}" for i in range(FILLER_KEYS)))


async def test_redis_at_maxmemory_makes_ingest_503_and_the_process_not_ready(
    fresh_redis, pg_url, tmp_path
):
    settings = pipeline_settings(fresh_redis.url, pg_url, tmp_path)
    with running_server(tmp_path / "data", env=settings_env(settings)) as server:
        assert (await readiness(server)).status_code == 200
        fill_redis(fresh_redis.url)
        await assert_refuses_writes(server, failing={"enqueue", "redis_memory"})
        empty_redis(fresh_redis.url)
        await assert_recovers(server)
