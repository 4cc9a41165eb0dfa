"""StreamConsumer on a real redis-server: what a worker may still store, and what it may forget."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from fleetlog.config import Settings
from fleetlog.keys import Keys
from fleetlog.queue.consumer import StreamConsumer, StreamEntry
from fleetlog.queue.redis_streams import RedisStreamQueue
from tests.fixtures.pipeline import make_record, open_consumer

KEYS = Keys()


@pytest.fixture
async def consumer(pipeline: Settings) -> AsyncIterator[StreamConsumer]:
    opened = open_consumer(pipeline, "worker-1")
    for shard in range(pipeline.stream_shards):
        await opened.ensure_group(shard)
    yield opened
    await opened.close()


async def read_all(consumer: StreamConsumer, shards: int) -> list[StreamEntry]:
    entries: list[StreamEntry] = []
    for shard in range(shards):
        entries += await consumer.read(shard, count=10, block_ms=10)
    return entries


async def test_hold_returns_only_the_entries_still_pending(
    pipeline: Settings, queue: RedisStreamQueue, consumer: StreamConsumer
) -> None:
    for _ in range(4):
        await queue.put([make_record()])
    entries = await read_all(consumer, pipeline.stream_shards)
    assert len(entries) == 4
    # Another worker stored and acknowledged one of them meanwhile.
    other = open_consumer(pipeline, "worker-2")
    try:
        await other.acknowledge(entries[1].shard, [entries[1]])
    finally:
        await other.close()
    assert await consumer.hold(entries) == [entries[0], *entries[2:]]


async def test_first_deliverable_is_the_first_entry_or_past_the_last(
    consumer: StreamConsumer, redis: Redis
) -> None:
    stream = KEYS.stream(0)
    for entry_id in ("5-0", "5-1", "7-0"):
        await redis.xadd(stream, {"n": "0", "b": b""}, id=entry_id)
    assert await consumer.first_deliverable(0) == (5, 0)
    await redis.xdel(stream, "5-0")
    assert await consumer.first_deliverable(0) == (5, 1)
    await redis.xdel(stream, "5-1", "7-0")
    assert await consumer.first_deliverable(0) == (7, 1)
