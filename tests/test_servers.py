"""The real-server fixtures of tests/fixtures/servers.py: they start, isolate, crash and recover."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
import redis

from tests.fixtures.servers import (
    TEMP_PREFIX,
    PostgresServer,
    RedisServer,
    ServerError,
    fresh_database,
    port_is_open,
)

STANDARD_PORTS = {5432, 6379}

# Filled by earlier tests and checked by later ones (tests run serially, in file order).
_database_urls: list[str] = []


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _databases(server: PostgresServer) -> set[str]:
    return set(server.psql("SELECT datname FROM pg_database").split())


def _assert_torn_down(server: RedisServer | PostgresServer) -> None:
    assert not server.is_running
    assert not port_is_open(server.port)
    assert not server.temp_dir.exists()


def test_redis_ping_set_get(redis_url: str, redis_server: RedisServer) -> None:
    assert redis_server.port not in STANDARD_PORTS
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    with _redis(redis_url) as client:
        assert client.ping()
        client.set("greeting", "hello")
        assert client.get("greeting") == "hello"


def test_redis_server_runs_with_durable_config(redis_url: str) -> None:
    with _redis(redis_url) as client:
        config = client.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "always"
    assert config["maxmemory-policy"] == "noeviction"
    assert config["save"] == ""


@pytest.mark.parametrize("run", [1, 2])
def test_redis_url_is_flushed_before_each_test(redis_url: str, run: int) -> None:
    with _redis(redis_url) as client:
        assert client.dbsize() == 0
        client.set(f"leftover-{run}", "x")


def test_redis_url_restarts_a_killed_session_server(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    redis_server.kill()
    assert not redis_server.is_running
    url = request.getfixturevalue("redis_url")
    assert redis_server.is_running
    with _redis(url) as client:
        assert client.ping()


def test_redis_aof_survives_kill_and_restart_and_the_server_is_torn_down() -> None:
    with RedisServer(temp_prefix=TEMP_PREFIX) as server:
        with _redis(server.url) as client:
            client.set("durable", "yes")
        port = server.port
        server.kill()
        assert not server.is_running
        assert not port_is_open(port)
        server.restart()
        assert server.port == port
        with _redis(server.url) as client:
            assert client.get("durable") == "yes"
    _assert_torn_down(server)


def test_redis_extra_args_override_defaults() -> None:
    extra = ["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"]
    with RedisServer(extra) as server, _redis(server.url) as client:
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    assert not server.is_running
    assert not server.temp_dir.exists()


def test_redis_start_failure_reports_the_log() -> None:
    server = RedisServer(["--no-such-directive", "x"])
    try:
        with pytest.raises(ServerError, match="Bad directive"):
            server.start()
    finally:
        server.close()
    assert not server.temp_dir.exists()


async def test_postgres_roundtrip(database_url: str, postgres_server: PostgresServer) -> None:
    _database_urls.append(database_url)
    assert postgres_server.port not in STANDARD_PORTS
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == _database_name(database_url)
        await conn.execute("CREATE TABLE logs (id serial PRIMARY KEY, line text NOT NULL)")
        await conn.execute("INSERT INTO logs (line) VALUES ($1), ($2)", "first", "second")
        rows = await conn.fetch("SELECT line FROM logs ORDER BY id")
    finally:
        await conn.close()
    assert [row["line"] for row in rows] == ["first", "second"]


@pytest.mark.parametrize("run", [1, 2])
async def test_database_url_is_a_new_database_per_test(database_url: str, run: int) -> None:
    assert database_url not in _database_urls
    _database_urls.append(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
        await conn.execute(f"CREATE TABLE made_by_run_{run} (x int)")
    finally:
        await conn.close()


def test_database_url_restarts_a_stopped_session_server(
    postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> None:
    postgres_server.stop()
    assert not postgres_server.is_running
    url = request.getfixturevalue("database_url")
    _database_urls.append(url)
    assert postgres_server.is_running
    assert postgres_server.psql("SELECT 1", _database_name(url)).strip() == "1"


def test_a_test_database_is_dropped_even_when_its_server_was_killed(
    postgres_server: PostgresServer,
) -> None:
    with fresh_database(postgres_server) as url:
        name = _database_name(url)
        assert name in _databases(postgres_server)
        postgres_server.kill()
        assert not postgres_server.is_running
    assert postgres_server.is_running
    assert name not in _databases(postgres_server)


async def test_postgres_commit_survives_kill_and_restart_and_the_server_is_torn_down() -> None:
    with PostgresServer(temp_prefix=TEMP_PREFIX) as server:
        server.create_database("durable")
        url = server.dsn("durable")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE t (v text)")
            await conn.execute("INSERT INTO t VALUES ('committed')")
            server.kill()
        finally:
            conn.terminate()
        assert not server.is_running
        assert not port_is_open(server.port)
        server.restart()
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT v FROM t") == "committed"
        finally:
            await conn.close()
        assert "automatic recovery in progress" in server.log_path.read_text()
    _assert_torn_down(server)
