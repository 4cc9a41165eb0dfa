"""Kill the pipeline's real processes; every acknowledged log is still stored exactly once."""

import signal
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from redis.asyncio import Redis

from fleetlog.config import Settings
from fleetlog.errors import StoreUnavailable
from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.redis_client import connect
from tests.fixtures.pipeline import (
    Table,
    assert_stored_once,
    make_record,
    pipeline_settings,
    wait_for,
    worker_process,
)
from tests.fixtures.servers import RedisServer

KEYS = Keys()


async def put_requests(queue: RedisStreamQueue, requests: int, *, per_request: int) -> list[str]:
    ids: list[str] = []
    for i in range(requests):
        device = f"device_{i % 50:03}"
        ids += await queue.put([make_record(device_id=device, message=f"{i}")] * per_request)
    return ids


async def pending(redis: Redis, shards: int = 4) -> int:
    total = 0
    for shard in range(shards):
        if await redis.exists(KEYS.stream(shard)) and await redis.xinfo_groups(KEYS.stream(shard)):
            total += (await redis.xpending(KEYS.stream(shard), KEYS.group))["pending"]
    return total


async def drained(redis: Redis, shards: int = 4) -> bool:
    lengths = [await redis.xlen(KEYS.stream(shard)) for shard in range(shards)]
    return sum(lengths) == 0 and await pending(redis) == 0


async def test_worker_killed_mid_batch_and_restarted_stores_everything_once(
    pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis, tmp_path: Path
) -> None:
    ids = await put_requests(queue, 600, per_request=100)
    log_path = tmp_path / "worker.log"

    with worker_process(pipeline, log_path) as worker:
        await wait_for(lambda: table.has(1), what="the first batch committed")
        worker.signal(signal.SIGKILL)
    assert await table.count() < len(ids), "the worker finished before it was killed"
    assert await pending(redis) > 0

    with worker_process(pipeline, log_path):
        await wait_for(lambda: drained(redis), what="the restarted worker to drain the streams")
    await assert_stored_once(table, ids)
    assert await table.count() == len(ids)


async def test_sigterm_finishes_the_batch_in_hand_and_a_new_worker_stores_the_rest_once(
    pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis, tmp_path: Path
) -> None:
    ids = await put_requests(queue, 600, per_request=100)

    with worker_process(pipeline, tmp_path / "worker.log") as worker:
        await wait_for(lambda: table.has(1), what="the first batch committed")
        assert worker.signal(signal.SIGTERM) == 0

    assert await pending(redis) == 0, "entries were read and left unacknowledged"
    left = sum([await redis.xlen(KEYS.stream(shard)) for shard in range(4)])
    assert await table.count() + left * 100 == len(ids)
    assert "stopped" in worker.output()

    with worker_process(pipeline, tmp_path / "worker.log"):
        await wait_for(lambda: drained(redis), what="a new worker to drain the streams")
    await assert_stored_once(table, ids)
    assert await table.count() == len(ids)


async def test_sigterm_cuts_a_batch_that_cannot_finish_short_at_the_bound(
    pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis, tmp_path: Path
) -> None:
    ids = await put_requests(queue, 20, per_request=100)
    log_path = tmp_path / "worker.log"
    # PostgreSQL hangs, as far as the worker can tell: its COPY waits on this lock.
    blocker = await asyncpg.connect(pipeline.database_url)
    hang = blocker.transaction()
    await hang.start()
    await blocker.execute("LOCK TABLE logs IN ACCESS EXCLUSIVE MODE")

    async def batch_in_hand() -> bool:
        return await pending(redis) > 0

    try:
        # Its statements may take 10 s (half the claim idle time): longer than the bound.
        env = {"FLEETLOG_SHUTDOWN_TIMEOUT": "1", "FLEETLOG_CLAIM_IDLE": "20"}
        with worker_process(pipeline, log_path, env=env) as worker:
            await wait_for(batch_in_hand, what="the worker to read a batch")
            assert worker.signal(signal.SIGTERM) == 0
    finally:
        await hang.rollback()
        await blocker.close()
    assert "cut its batch short" in worker.output()

    with worker_process(pipeline, log_path):
        await wait_for(lambda: drained(redis), what="a new worker to drain the streams")
    await assert_stored_once(table, ids)
    assert await table.count() == len(ids)


async def test_redis_killed_and_restarted_with_aof_loses_no_acknowledged_log(
    fresh_redis: RedisServer, pg_url: str, table: Table, tmp_path: Path
) -> None:
    settings = pipeline_settings(fresh_redis.url, pg_url, tmp_path)
    queue = RedisStreamQueue(
        connect(fresh_redis.url), keys=KEYS, shards=4, max_backlog=10**6, retry_after=1.0
    )
    redis = Redis.from_url(fresh_redis.url)
    acknowledged: list[str] = []
    refused = 0
    try:
        with worker_process(settings, tmp_path / "worker.log"):
            acknowledged += await put_requests(queue, 100, per_request=10)
            fresh_redis.kill()
            try:
                await queue.put([make_record()])
            except StoreUnavailable:
                refused += 1
            fresh_redis.start()
            acknowledged += await put_requests(queue, 100, per_request=10)
            await wait_for(lambda: table.has(len(acknowledged)), what="every acked log stored")
            await wait_for(lambda: drained(redis), what="the streams to drain")
    finally:
        await queue.close()
        await redis.aclose()
    assert refused == 1
    await assert_stored_once(table, acknowledged)
    assert await table.count() == len(acknowledged)
