"""The `fleetlog` command as operators run it: migrate, the worker's own checks and metrics port,
and JSON logs."""

import json
import sqlite3
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families

from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.store.migrate import alembic_config
from tests.fixtures.pipeline import (
    make_record,
    pipeline_settings,
    settings_env,
    wait_for,
    worker_process,
)
from tests.fixtures.process import FleetlogProcess, free_port, running_server
from tests.fixtures.records import make_log
from tests.fixtures.servers import RedisServer, cluster_node

EXIT_TIMEOUT_S = 60


def run(args: list[str], *, env: dict[str, str], log_path: Path) -> tuple[int, str]:
    """Run `fleetlog <args>` to its end: its exit code and output."""
    process = FleetlogProcess(args, env=env, log_path=log_path)
    process.start()
    assert process.proc is not None
    try:
        return process.proc.wait(timeout=EXIT_TIMEOUT_S), process.output()
    finally:
        process.stop()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


class TestMigrate:
    def test_brings_an_embedded_store_to_the_newest_schema_and_is_idempotent(self, tmp_path):
        env = {"FLEETLOG_DATA_DIR": str(tmp_path / "data")}
        for _ in range(2):
            code, output = run(["migrate"], env=env, log_path=tmp_path / "migrate.log")
            assert code == 0, output
        assert "schema up to date (embedded)" in output
        with sqlite3.connect(tmp_path / "data" / "fleetlog.sqlite3") as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
                (head_revision(),)
            ]
            assert db.execute("SELECT count(*) FROM logs").fetchone() == (0,)

    async def test_brings_postgresql_to_the_newest_schema(self, database_url, redis_url, tmp_path):
        env = {"FLEETLOG_DATABASE_URL": database_url, "FLEETLOG_REDIS_URL": redis_url}
        code, output = run(["migrate"], env=env, log_path=tmp_path / "migrate.log")
        assert code == 0, output
        assert "schema up to date (redis-postgres)" in output
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
            assert await conn.fetchval("SELECT count(*) FROM logs") == 0
        finally:
            await conn.close()


class TestWorkerStartup:
    def test_refuses_a_redis_that_may_evict_logs(self, pg_url, tmp_path):
        with RedisServer(["--maxmemory-policy", "allkeys-lru"]) as redis_server:
            settings = pipeline_settings(redis_server.url, pg_url, tmp_path)
            code, output = run(["worker"], env=settings_env(settings), log_path=tmp_path / "w.log")
        assert code != 0
        assert "maxmemory-policy is allkeys-lru" in output

    def test_refuses_a_node_of_a_redis_cluster(self, pg_url, tmp_path):
        with RedisServer(cluster_node()) as redis_server:
            settings = pipeline_settings(redis_server.url, pg_url, tmp_path)
            code, output = run(["worker"], env=settings_env(settings), log_path=tmp_path / "w.log")
        assert code != 0
        assert "Redis Cluster (cluster_enabled:1)" in output

    async def test_warns_when_redis_runs_without_aof_and_serves(self, pg_url, tmp_path):
        with RedisServer(["--appendonly", "no"]) as redis_server:
            settings = pipeline_settings(redis_server.url, pg_url, tmp_path)
            with worker_process(settings, tmp_path / "w.log") as worker:

                async def serving() -> bool:
                    return "serving 4 shards" in worker.output()

                await wait_for(serving, what="the worker to start serving")
        assert "Redis runs without AOF" in worker.output()


async def stored_total(url: str) -> float | None:
    """`fleetlog_logs_stored_total` scraped from `url`; None while nothing answers there."""
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(url)).text
    except httpx.TransportError:
        return None
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fleetlog_logs_stored_total"
    )


async def test_the_worker_serves_its_own_metrics_on_its_port(
    pipeline, queue: RedisStreamQueue, tmp_path
):
    port = free_port()
    settings = pipeline.model_copy(update={"worker_metrics_port": port})
    await queue.put([make_record(message=f"m{i}") for i in range(3)])
    with worker_process(settings, tmp_path / "w.log"):

        async def counted_three() -> bool:
            return await stored_total(f"http://127.0.0.1:{port}/metrics") == 3

        await wait_for(counted_three, what="the worker's /metrics to count 3 stored logs")


def test_json_logs_are_one_object_per_line(tmp_path):
    env = {"FLEETLOG_LOG_FORMAT": "json"}
    with running_server(tmp_path / "data", env=env) as server:
        assert httpx.post(f"{server.url}/api/log", json=make_log()).status_code == 200
    lines = server.output().splitlines()
    entries = [json.loads(line) for line in lines]
    assert all(set(entry) >= {"ts", "level", "logger", "message"} for entry in entries)
    messages = "\n".join(entry["message"] for entry in entries)
    assert "embedded mode" in messages
    assert "synchronous=FULL" in messages
