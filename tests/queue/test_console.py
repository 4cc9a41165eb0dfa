"""The queue console on real Redis: status numbers, idle consumers, logs stored per second."""

import time
from datetime import timedelta

from redis.asyncio import Redis

from fleetlog.config import Settings
from fleetlog.keys import Keys
from fleetlog.queue.console import QueueConsole, stored_rate
from fleetlog.queue.redis_streams import RedisStreamQueue
from tests.fixtures.pipeline import (
    Table,
    make_record,
    open_consumer,
    running_worker,
    sample,
    wait_for,
)

KEYS = Keys()


def console_of(redis: Redis) -> QueueConsole:
    return QueueConsole(redis, keys=KEYS, shards=4)


class TestStatus:
    async def test_the_numbers_of_a_known_state(
        self, pipeline: Settings, queue: RedisStreamQueue, redis: Redis
    ) -> None:
        # Shard 3's oldest entry is a minute old: an id names its time.
        minute_ago = int(time.time() * 1000) - 60_000
        await redis.xadd(KEYS.stream(3), {"n": "1", "b": b"x"}, id=f"{minute_ago}-0")
        await redis.incrby(KEYS.backlog(3), 1)
        for size in (1, 2, 3, 4):  # the shards in turn: 0, 1, 2, 3
            await queue.put([make_record()] * size)
        reader = open_consumer(pipeline, "reader")
        try:
            assert len(await reader.read(0, count=10, block_ms=10)) == 1
        finally:
            await reader.close()

        status = await console_of(redis).status()

        assert [shard.backlog for shard in status.shards] == [1, 2, 3, 5]
        assert [shard.pending for shard in status.shards] == [1, 0, 0, 0]
        assert [(c.name, c.pending) for c in status.shards[0].consumers] == [("reader", 1)]
        assert status.shards[0].consumers[0].idle_s >= 0
        assert 60 <= status.shards[3].oldest_entry_age_s < 3600
        assert status.oldest_entry_age_s == status.shards[3].oldest_entry_age_s
        assert (status.backlog, status.pending, status.dead_letters) == (11, 1, 0)
        assert status.stored_per_s is None

    async def test_a_shard_no_process_has_touched_reads_as_empty(self, redis: Redis) -> None:
        shard = (await console_of(redis).status()).shards[0]
        assert (shard.backlog, shard.pending, shard.oldest_entry_age_s) == (0, 0, 0.0)
        assert shard.consumers == []


class TestStoredRate:
    def test_the_total_now_against_the_newest_sample_a_window_old(self) -> None:
        samples = [b"170000 900", b"150000 500", b"100000 300", b"40000 0"]
        assert stored_rate(samples, now_ms=200_000, total=1000) == 7.0

    def test_the_oldest_sample_when_none_is_a_window_old(self) -> None:
        assert stored_rate([b"195000 900", b"190000 500"], now_ms=200_000, total=1000) == 50.0

    def test_unknown_without_a_sample_a_second_old(self) -> None:
        assert stored_rate([], now_ms=200_000, total=10) is None
        assert stored_rate([b"199500 5"], now_ms=200_000, total=10) is None

    def test_no_worker_sampling_lets_the_rate_fall(self) -> None:
        assert stored_rate([b"100000 1000"], now_ms=1_100_000, total=1000) == 0.0


class TestRemovingIdleConsumers:
    async def test_only_an_idle_consumer_that_holds_nothing_is_removed(
        self, pipeline: Settings, queue: RedisStreamQueue, redis: Redis
    ) -> None:
        await queue.put([make_record()])  # onto shard 0
        holding = open_consumer(pipeline, "holding")
        try:
            assert len(await holding.read(0, count=10, block_ms=10)) == 1
        finally:
            await holding.close()
        for name in ("empty", "me"):
            await redis.xgroup_createconsumer(KEYS.stream(0), KEYS.group, name)
        console = console_of(redis)

        assert await console.remove_idle_consumers(0, idle_ms=3_600_000, keep="me") == []
        assert await console.remove_idle_consumers(0, idle_ms=0, keep="me") == ["empty"]

        consumers = (await console.shard(0)).consumers
        assert sorted((c.name, c.pending) for c in consumers) == [("holding", 1), ("me", 0)]


async def test_the_worker_sets_the_gauges_counts_what_it_stores_and_tidies_consumers(
    pipeline: Settings, queue: RedisStreamQueue, redis: Redis, table: Table
) -> None:
    settings = pipeline.model_copy(update={"consumer_idle_removal": timedelta(milliseconds=1)})
    await redis.xgroup_createconsumer(KEYS.stream(1), KEYS.group, "gone-worker")
    await redis.xadd(KEYS.stream(2), {"n": "0", "b": b"\x80not a batch"})
    for _ in range(4):
        await queue.put([make_record()] * 5)
    console = console_of(redis)

    async def tidy() -> bool:
        status = await console.status()
        names = {consumer.name for shard in status.shards for consumer in shard.consumers}
        return status.backlog == 0 and status.dead_letters == 1 and "gone-worker" not in names

    async def gauges_set() -> bool:
        dead = sample("fleetlog_dead_letter_entries", shard="2")
        age = sample("fleetlog_stream_oldest_entry_age_seconds", shard="2")
        return dead == 1 and age == 0

    async with running_worker(settings):
        await wait_for(lambda: table.has(20), what="the logs stored")
        await wait_for(tidy, what="the queue drained and the dead consumer removed")
        await wait_for(gauges_set, what="the gauges of shard 2")

    status = await console.status()
    assert [shard.stored_total for shard in status.shards] == [5, 5, 5, 5]
    assert all([await redis.llen(KEYS.stored_samples(shard)) for shard in range(4)])
