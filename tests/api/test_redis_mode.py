"""The API in Redis mode: 200 once Redis has the entry, 503 + Retry-After past the backlog."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from fleetlog.api.app import create_app
from fleetlog.keys import Keys
from tests.fixtures.pipeline import pipeline_settings, sample, shard_of_id
from tests.fixtures.records import make_batch, make_log

KEYS = Keys()


@pytest.fixture
async def redis_client(
    redis_url: str, pg_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    # 20 logs of backlog over 4 shards: 5 per shard.
    settings = pipeline_settings(redis_url, pg_url, tmp_path, max_backlog=20)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fleetlog.test") as http:
            yield http


async def test_a_batch_is_one_stream_entry_answered_with_its_message_ids(
    redis_client: httpx.AsyncClient, redis: Redis
) -> None:
    answer = await redis_client.post("/api/logs/batch", json=make_batch(3, device_id="cam-7"))
    assert answer.status_code == 200
    message_ids = answer.json()["message_ids"]
    shard = shard_of_id(message_ids[0])
    [(entry_id, fields)] = await redis.xrange(KEYS.stream(shard))
    assert fields[b"n"] == b"3"
    assert message_ids == [f"{shard}-{entry_id.decode()}-{i}" for i in range(3)]


async def test_past_the_backlog_limit_the_answer_is_503_with_retry_after(
    redis_client: httpx.AsyncClient, redis: Redis
) -> None:
    before = sample("fleetlog_ingest_rejected_total", reason="backlog_full")
    for _ in range(4):  # 4 of 5 on every shard
        assert (await redis_client.post("/api/logs/batch", json=make_batch(4))).status_code == 200
    answer = await redis_client.post("/api/logs/batch", json=make_batch(2))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["error"] == "backlog_full"
    assert sample("fleetlog_ingest_rejected_total", reason="backlog_full") - before == 1
    assert (await redis_client.post("/api/log", json=make_log())).status_code == 200


async def test_health_names_redis_and_postgres(redis_client: httpx.AsyncClient) -> None:
    answer = await redis_client.get("/health")
    assert answer.json()["checks"] == {
        "redis": True,
        "postgres": True,
        "enqueue": True,
        "redis_memory": True,
    }
    assert answer.json()["mode"] == "redis-postgres"
