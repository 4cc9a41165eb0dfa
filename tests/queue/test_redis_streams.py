"""RedisStreamQueue on a real redis-server: one entry per request, a hard backlog limit."""

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from fleetlog.errors import Misconfigured, QueueFull, StoreUnavailable
from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import (
    GROUP_BYTES,
    GROUP_ENTRIES,
    Pending,
    RedisStreamQueue,
    has_headroom,
    take_group,
)
from fleetlog.records import decode_records
from fleetlog.redis_client import connect
from tests.fixtures.pipeline import make_record, shard_of_id
from tests.fixtures.servers import RedisServer, cluster_node

KEYS = Keys()


def make_queue(
    url: str, *, max_backlog: int = 1000, shards: int = 4, memory_high_water: float = 1.0
) -> RedisStreamQueue:
    return RedisStreamQueue(
        connect(url),
        keys=KEYS,
        shards=shards,
        max_backlog=max_backlog,
        retry_after=2.0,
        memory_high_water=memory_high_water,
    )


class TestPut:
    async def test_one_request_is_one_entry_on_one_shard(
        self, queue: RedisStreamQueue, redis: Redis
    ) -> None:
        records = [make_record(device_id="cam-7", message=f"m{i}") for i in range(5)]
        records.append(make_record(device_id="other-device"))

        ids = await queue.put(records)

        shard = shard_of_id(ids[0])
        [(entry_id, fields)] = await redis.xrange(KEYS.stream(shard))
        assert fields[b"n"] == b"6"
        assert decode_records(fields[b"b"]) == records
        assert ids == [f"{shard}-{entry_id.decode()}-{pos}" for pos in range(6)]
        assert await queue.backlog() == 6

    async def test_the_backlog_limit_refuses_without_writing(self, redis_url: str, redis: Redis):
        queue = make_queue(redis_url, max_backlog=20, shards=2)  # 10 logs per shard
        try:
            await queue.put([make_record(device_id="cam-7")] * 8)  # shard 0
            await queue.put([make_record(device_id="cam-7")] * 8)  # shard 1
            with pytest.raises(QueueFull) as refused:
                await queue.put([make_record(device_id="cam-7")] * 3)  # shard 0: 11 > 10
            await queue.put([make_record(device_id="cam-7")] * 2)  # shard 1: 10
        finally:
            await queue.close()
        assert refused.value.headers == {"Retry-After": "2"}
        assert [await redis.xlen(KEYS.stream(shard)) for shard in (0, 1)] == [1, 2]

    async def test_requests_take_the_shards_in_turn_whatever_their_devices(
        self, queue: RedisStreamQueue
    ) -> None:
        shards = [shard_of_id((await queue.put([make_record(device_id="cam-7")]))[0])]
        for _ in range(7):
            shards += [shard_of_id((await queue.put([make_record(device_id="cam-7")]))[0])]
        assert sorted(shards[:4]) == [0, 1, 2, 3]
        assert shards[4:] == shards[:4]

    async def test_redis_down_is_store_unavailable(self, fresh_redis: RedisServer) -> None:
        queue = make_queue(fresh_redis.url)
        try:
            fresh_redis.kill()
            with pytest.raises(StoreUnavailable):
                await queue.put([make_record()])
            assert not await queue.ping()
        finally:
            await queue.close()


class TestGroupEnqueue:
    async def test_concurrent_requests_share_calls_of_the_script(
        self, redis_url: str, redis: Redis
    ) -> None:
        queue = make_queue(redis_url, shards=2)
        try:
            before = await script_calls(redis)
            answers = await asyncio.gather(
                *(queue.put([make_record(device_id="cam-7", message=f"m{i}")]) for i in range(40))
            )
            # Per shard: the first request's call, then one for all that waited meanwhile.
            assert await script_calls(redis) - before <= 4
        finally:
            await queue.close()
        [ids] = zip(*answers, strict=True)
        assert len(set(ids)) == 40
        for shard in (0, 1):
            entries = await redis.xrange(KEYS.stream(shard))
            messages = [decode_records(fields[b"b"])[0].message for _, fields in entries]
            assert messages == [f"m{i}" for i in range(40) if shard_of_id(ids[i]) == shard]

    async def test_in_one_call_the_entries_past_the_limit_are_refused(
        self, redis_url: str, redis: Redis
    ) -> None:
        queue = make_queue(redis_url, max_backlog=10, shards=1)
        try:
            answers = await asyncio.gather(
                *(queue.put([make_record(device_id="cam-7")] * 4) for _ in range(3)),
                return_exceptions=True,
            )
        finally:
            await queue.close()
        assert [isinstance(answer, QueueFull) for answer in answers] == [False, False, True]
        assert await redis.xlen(KEYS.stream(0)) == 2


async def script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


class TestStartupChecks:
    async def test_refuses_a_redis_that_may_evict(self) -> None:
        with RedisServer(["--maxmemory-policy", "allkeys-lru"]) as server:
            queue = make_queue(server.url)
            try:
                with pytest.raises(Misconfigured, match="allkeys-lru"):
                    await queue.start()
            finally:
                await queue.close()

    async def test_refuses_a_node_of_a_redis_cluster(self) -> None:
        with RedisServer(cluster_node()) as server:
            queue = make_queue(server.url)
            try:
                with pytest.raises(Misconfigured, match="cluster_enabled:1"):
                    await queue.start()
            finally:
                await queue.close()

    async def test_warns_when_aof_is_off(self, caplog: pytest.LogCaptureFixture) -> None:
        with RedisServer(["--appendonly", "no"]) as server:
            queue = make_queue(server.url)
            try:
                with caplog.at_level(logging.WARNING, "fleetlog.queue.redis_config"):
                    await queue.start()
            finally:
                await queue.close()
        assert "without AOF" in caplog.text

    async def test_a_durable_redis_starts_quietly(
        self, queue: RedisStreamQueue, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING):
            await queue.start()
        assert caplog.text == ""


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


class TestWritable:
    async def test_a_redis_with_room_takes_writes(self, redis_url: str) -> None:
        queue = make_queue(redis_url, memory_high_water=0.95)
        try:
            assert await queue.writable() == {"enqueue": True, "redis_memory": True}
        finally:
            await queue.close()

    async def test_past_the_high_water_of_maxmemory_redis_has_no_room(
        self, fresh_redis: RedisServer
    ) -> None:
        queue = make_queue(fresh_redis.url, memory_high_water=0.5)
        try:
            used = await used_memory(queue.client)
            await queue.client.config_set("maxmemory", int(used * 1.5))
            assert (await queue.writable())["redis_memory"] is False
        finally:
            await queue.close()

    async def test_a_refused_enqueue_counts_until_an_enqueue_succeeds(
        self, fresh_redis: RedisServer
    ) -> None:
        queue = make_queue(fresh_redis.url)
        try:
            await queue.client.config_set("maxmemory", await used_memory(queue.client) // 2)
            with pytest.raises(StoreUnavailable):
                await queue.put([make_record()])
            assert (await queue.writable())["enqueue"] is False
            await queue.client.config_set("maxmemory", 0)
            await queue.put([make_record()])
            assert (await queue.writable())["enqueue"] is True
        finally:
            await queue.close()

    def test_headroom_is_a_share_of_maxmemory_whatever_the_policy(self) -> None:
        assert has_headroom({"maxmemory": 0, "used_memory": 10**9}, 0.95)
        assert has_headroom({"maxmemory": 100, "used_memory": 94}, 0.95)
        full = {"maxmemory": 100, "used_memory": 95, "maxmemory_policy": "allkeys-lru"}
        assert not has_headroom(full, 0.95)


class TestTakeGroup:
    async def test_a_group_is_bounded_in_entries_and_bytes(self) -> None:
        small = [Pending(1, b"x") for _ in range(GROUP_ENTRIES + 5)]
        assert len(take_group(small)) == GROUP_ENTRIES
        assert len(small) == 5
        big = [Pending(1, b"x" * (GROUP_BYTES // 2 + 1)) for _ in range(3)]
        assert len(take_group(big)) == 1
        assert len(big) == 2
        alone = [Pending(1, b"x" * (GROUP_BYTES * 2))]
        assert len(take_group(alone)) == 1
