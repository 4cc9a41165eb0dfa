"""The real-server fixtures of tests/fixtures/servers.py: they start, isolate, crash and recover."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
import redis

from tests.fixtures.servers import PostgresServer, RedisServer, ServerError, port_is_open

STANDARD_PORTS = {5432, 6379}

# Filled by earlier tests and checked by later ones (tests run serially, in file order).
_database_urls: list[str] = []
_fresh_servers: list[RedisServer | PostgresServer] = []


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


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


def test_redis_aof_survives_kill_and_restart(fresh_redis: RedisServer) -> None:
    _fresh_servers.append(fresh_redis)
    with _redis(fresh_redis.url) as client:
        client.set("durable", "yes")
    port = fresh_redis.port
    fresh_redis.kill()
    assert not fresh_redis.is_running
    assert not port_is_open(port)
    fresh_redis.restart()
    assert fresh_redis.port == port
    with _redis(fresh_redis.url) as client:
        assert client.get("durable") == "yes"


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


def test_database_url_teardown_restarts_the_server(
    postgres_server: PostgresServer, database_url: str
) -> None:
    _database_urls.append(database_url)
    postgres_server.kill()
    assert not postgres_server.is_running


def test_databases_of_earlier_tests_were_dropped(postgres_server: PostgresServer) -> None:
    assert postgres_server.is_running
    existing = set(postgres_server.psql("SELECT datname FROM pg_database").split())
    assert existing.isdisjoint(_database_name(url) for url in _database_urls)


async def test_postgres_commit_survives_kill_and_restart(fresh_postgres: PostgresServer) -> None:
    _fresh_servers.append(fresh_postgres)
    fresh_postgres.create_database("durable")
    url = fresh_postgres.dsn("durable")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE t (v text)")
        await conn.execute("INSERT INTO t VALUES ('committed')")
        fresh_postgres.kill()
    finally:
        conn.terminate()
    assert not fresh_postgres.is_running
    assert not port_is_open(fresh_postgres.port)
    fresh_postgres.restart()
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT v FROM t") == "committed"
    finally:
        await conn.close()
    assert "automatic recovery in progress" in fresh_postgres.log_path.read_text()


def test_fresh_servers_are_torn_down() -> None:
    for server in _fresh_servers:
        assert not server.is_running
        assert not port_is_open(server.port)
        assert not server.temp_dir.exists()
