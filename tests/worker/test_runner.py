"""The worker on real Redis and PostgreSQL: every accepted log stored exactly once."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from fleetlog.config import Settings
from fleetlog.errors import StoreUnavailable
from fleetlog.keys import Keys
from fleetlog.queue.consumer import StreamEntry
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.records import encode_records
from fleetlog.store.bulk import BulkWriter
from fleetlog.worker import runner
from fleetlog.worker.runner import packed
from tests.fixtures.pipeline import (
    Table,
    assert_stored_once,
    make_record,
    migrate_database,
    open_consumer,
    pipeline_settings,
    running_worker,
    sample,
    shard_of_id,
    wait_for,
)
from tests.fixtures.servers import PostgresServer

KEYS = Keys()


async def put_many(
    queue: RedisStreamQueue, requests: int, *, per_request: int = 5, tag: str = ""
) -> list[str]:
    ids: list[str] = []
    for i in range(requests):
        device = f"device_{i % 23:03}"
        records = [
            make_record(device_id=device, message=f"{tag}{i}.{j}") for j in range(per_request)
        ]
        ids += await queue.put(records)
    return ids


async def drained(redis: Redis, shards: int = 4) -> bool:
    """Nothing waits in any shard: streams empty, nothing pending, backlog counters at zero."""
    for shard in range(shards):
        if await redis.xlen(KEYS.stream(shard)) or int(await redis.get(KEYS.backlog(shard)) or 0):
            return False
    return True


class TestStoring:
    async def test_every_accepted_log_is_stored_once_and_the_streams_drain(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        stored_before = sample("fleetlog_logs_stored_total")
        ids = await put_many(queue, 200, tag="a")
        async with running_worker(pipeline):
            ids += await put_many(queue, 200, tag="b")
            await wait_for(lambda: table.has(len(ids)), what="2000 logs stored")
            await wait_for(lambda: drained(redis), what="the streams to drain")
        await assert_stored_once(table, ids)
        assert await table.count() == 2000
        assert sample("fleetlog_logs_stored_total") - stored_before == 2000

    async def test_devices_and_days_stored_get_their_cache_versions_bumped(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        late = datetime(2026, 11, 28, 12, tzinfo=UTC)
        await queue.put([make_record(device_id="cam-7")] * 3)
        await queue.put([make_record(device_id="cam-8", ts=late)])
        async with running_worker(pipeline):
            await wait_for(lambda: drained(redis), what="the streams to drain")
        assert int(await redis.get(KEYS.cache_version("cam-7"))) >= 1
        assert int(await redis.get(KEYS.cache_version("cam-8"))) >= 1
        today = datetime.now(UTC).date().isoformat()
        assert int(await redis.get(KEYS.cache_day_version(today))) >= 1
        assert int(await redis.get(KEYS.cache_day_version("2026-11-28"))) >= 1

    async def test_on_stored_runs_before_the_acknowledgement(
        self, pipeline: Settings, queue: RedisStreamQueue, redis: Redis
    ) -> None:
        seen: list[tuple[set[str], int]] = []

        async def on_stored(devices: set[str], days: set[str]) -> None:
            seen.append((devices, await redis.xlen(KEYS.stream(shard))))

        shard = shard_of_id((await queue.put([make_record(device_id="cam-7")]))[0])
        async with running_worker(pipeline, on_stored=on_stored):
            await wait_for(lambda: drained(redis), what="the streams to drain")
        assert seen == [({"cam-7"}, 1)]

    async def test_a_batch_gathers_the_entries_of_every_shard_into_one_commit(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        ids = await put_many(queue, 8)
        assert {shard_of_id(message_id) for message_id in ids} == set(range(4))
        commits = sample("fleetlog_store_commit_rows_count")
        # The batch closes as it takes its 40th log, long before its wait would end.
        gathering = pipeline.model_copy(
            update={"worker_batch_logs": 40, "worker_batch_wait": timedelta(seconds=30)}
        )
        async with running_worker(gathering):
            await wait_for(lambda: drained(redis), what="the streams to drain")
        assert sample("fleetlog_store_commit_rows_count") - commits == 1
        await assert_stored_once(table, ids)

    async def test_two_workers_share_the_load_and_store_each_log_once(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        batches: dict[str, int] = {"one": 0, "two": 0}

        def counting(name: str):
            async def on_stored(devices: set[str], days: set[str]) -> None:
                batches[name] += 1
                await asyncio.sleep(0.005)

            return on_stored

        ids: list[str] = []
        async with (
            running_worker(pipeline, name="one", on_stored=counting("one")),
            running_worker(pipeline, name="two", on_stored=counting("two")),
        ):
            for wave in range(20):
                ids += await put_many(queue, 30, tag=f"w{wave}.")
                await asyncio.sleep(0.01)
            await wait_for(lambda: table.has(len(ids)), what="every log stored")
            await wait_for(lambda: drained(redis), what="the streams to drain")
        await assert_stored_once(table, ids)
        assert await table.count() == len(ids)
        assert batches["one"] > 0
        assert batches["two"] > 0


async def read_by_a_dead_worker(settings: Settings) -> list[StreamEntry]:
    """Every shard's entries, delivered to a consumer that then disappears unacknowledged."""
    dead = open_consumer(settings, "dead-worker")
    entries: list[StreamEntry] = []
    try:
        for shard in range(settings.stream_shards):
            await dead.ensure_group(shard)
            entries += await dead.read(shard, count=100, block_ms=10)
    finally:
        await dead.close()
    return entries


async def committed_by_a_dead_worker(settings: Settings, writer: BulkWriter) -> list[StreamEntry]:
    """Every shard's entries, committed by a worker that died before acknowledging them."""
    entries = await read_by_a_dead_worker(settings)
    await writer.write([packed(entry) for entry in entries])
    return entries


def dead_lettered(settings: Settings, reason: str) -> float:
    return sum(
        sample("fleetlog_dead_letters_total", shard=str(shard), reason=reason)
        for shard in range(settings.stream_shards)
    )


class TestRedelivery:
    async def test_entries_of_a_dead_worker_are_reclaimed(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        ids = await put_many(queue, 40)
        await read_by_a_dead_worker(pipeline)
        async with running_worker(pipeline):
            await wait_for(lambda: drained(redis), what="the dead worker's entries to be stored")
        await assert_stored_once(table, ids)

    async def test_a_batch_committed_but_not_acknowledged_is_stored_once(
        self,
        pipeline: Settings,
        queue: RedisStreamQueue,
        writer: BulkWriter,
        table: Table,
        redis: Redis,
    ) -> None:
        ids = await put_many(queue, 40)
        await committed_by_a_dead_worker(pipeline, writer)
        assert await table.count() == 200
        duplicates_before = sample("fleetlog_logs_duplicate_total")
        retired: set[str] = set()
        retired_days: set[str] = set()

        async def on_stored(devices: set[str], days: set[str]) -> None:
            retired.update(devices)
            retired_days.update(days)

        async with running_worker(pipeline, on_stored=on_stored):
            await wait_for(lambda: drained(redis), what="the redelivered entries to be acked")

        await assert_stored_once(table, ids)
        assert await table.count() == 200
        assert sample("fleetlog_logs_duplicate_total") - duplicates_before == 200
        # The dead worker never retired its devices' cached answers: the redelivery does.
        assert retired == {f"device_{i:03}" for i in range(23)}
        assert retired_days == {datetime.now(UTC).date().isoformat()}


class TestLedger:
    async def test_entries_gone_from_the_stream_are_forgotten(
        self,
        pipeline: Settings,
        queue: RedisStreamQueue,
        table: Table,
        redis: Redis,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(runner, "LEDGER_KEEP", timedelta(0))
        ids = await put_many(queue, 12)

        async def ledger_empty() -> bool:
            return await table.fetchval("SELECT count(*) FROM stored_entries") == 0

        async with running_worker(pipeline):
            await wait_for(lambda: drained(redis), what="the streams to drain")
            await wait_for(ledger_empty, what="the ledger to forget the acknowledged entries")
        await assert_stored_once(table, ids)

    async def test_entries_are_remembered_for_ledger_keep(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        await put_many(queue, 12)
        async with running_worker(pipeline) as worker:
            await wait_for(lambda: drained(redis), what="the streams to drain")
            for shard in range(pipeline.stream_shards):
                await worker.reclaim(shard)
        assert await table.fetchval("SELECT count(*) FROM stored_entries") == 12


class TestPoison:
    async def test_an_undecodable_entry_goes_to_the_dead_letter_stream(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        shard = 2
        ids = await queue.put([make_record(device_id="cam-7")] * 2)
        bad_id = await redis.xadd(KEYS.stream(shard), {"n": "0", "b": b"\x80not a batch"})
        ids += await queue.put([make_record(device_id="cam-7")] * 2)
        before = sample("fleetlog_dead_letters_total", shard=str(shard), reason="undecodable")

        async with running_worker(pipeline):
            await wait_for(lambda: drained(redis), what="the streams to drain")

        await assert_stored_once(table, ids)
        [(_, dead)] = await redis.xrange(KEYS.dead(shard))
        assert dead[b"id"] == bad_id
        assert b"not a batch of records" in dead[b"error"]
        assert dead[b"b"] == b"\x80not a batch"
        after = sample("fleetlog_dead_letters_total", shard=str(shard), reason="undecodable")
        assert after - before == 1

    async def test_a_stored_entry_delivered_past_the_limit_is_acknowledged_not_dead_lettered(
        self,
        pipeline: Settings,
        queue: RedisStreamQueue,
        writer: BulkWriter,
        table: Table,
        redis: Redis,
    ) -> None:
        ids = await put_many(queue, 8)
        # Workers that each committed the entries and died before acknowledging them, until
        # the entries were delivered as often as allowed.
        entries = await committed_by_a_dead_worker(pipeline, writer)
        for entry in entries:
            await redis.xclaim(
                KEYS.stream(entry.shard),
                KEYS.group,
                "dead-worker",
                0,
                [entry.id],
                retrycount=pipeline.max_deliveries,
            )

        async with running_worker(pipeline):
            await wait_for(lambda: drained(redis), what="the entries to be acknowledged")

        await assert_stored_once(table, ids)
        assert await table.count() == 40
        for shard in range(pipeline.stream_shards):
            assert await redis.xlen(KEYS.dead(shard)) == 0

    async def test_a_refused_entry_is_isolated_then_dead_lettered_after_max_deliveries(
        self, pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
    ) -> None:
        shard = 2
        ids = await queue.put([make_record(device_id="cam-7")] * 3)
        # Past the API's validation, PostgreSQL refuses NUL in text.
        poison = [make_record(device_id="cam-7"), make_record(device_id="cam-7", message="\x00")]
        bad_id = await redis.xadd(KEYS.stream(shard), {"n": 2, "b": encode_records(poison)})
        await redis.incrby(KEYS.backlog(shard), 2)
        ids += await queue.put([make_record(device_id="cam-7")] * 3)

        async with running_worker(pipeline):
            await wait_for(lambda: table.has(6), what="the good entries to be stored")
            await wait_for(lambda: drained(redis), what="the poison entry to be dead-lettered")

        await assert_stored_once(table, ids)
        assert await table.count() == 6
        [(_, dead)] = await redis.xrange(KEYS.dead(shard))
        assert dead[b"id"] == bad_id
        assert dead[b"deliveries"] == str(pipeline.max_deliveries).encode()
        assert b"\\u0000" in dead[b"error"]


async def test_postgres_down_the_worker_waits_and_loses_nothing(
    fresh_postgres: PostgresServer, redis_url: str, tmp_path, queue: RedisStreamQueue
) -> None:
    fresh_postgres.create_database("logs")
    url = fresh_postgres.dsn("logs")
    await migrate_database(url)
    settings = pipeline_settings(redis_url, url, tmp_path)
    table = Table(url)
    retries_before = sample("fleetlog_worker_retries_total", reason="postgres")

    async with running_worker(settings):
        ids = await put_many(queue, 20, tag="before")
        await wait_for(lambda: table.has(100), what="the first logs stored")
        fresh_postgres.stop()
        ids += await put_many(queue, 20, tag="during")

        async def retried() -> bool:
            return sample("fleetlog_worker_retries_total", reason="postgres") > retries_before + 2

        await wait_for(retried, what="the worker to back off")
        assert await queue.backlog() == 100
        fresh_postgres.start()
        await wait_for(lambda: table.has(200), what="the logs accepted while PostgreSQL was down")

    await assert_stored_once(table, ids)
    assert await table.count() == 200


async def test_a_long_postgres_outage_dead_letters_nothing(
    fresh_postgres: PostgresServer, redis_url: str, tmp_path, queue: RedisStreamQueue
) -> None:
    """Idle workers must not reclaim a batch its worker holds through the outage: each
    reclaim would count a delivery, and past the limit valid entries would be dead-lettered."""
    fresh_postgres.create_database("logs")
    url = fresh_postgres.dsn("logs")
    await migrate_database(url)
    settings = pipeline_settings(redis_url, url, tmp_path, claim_idle=timedelta(seconds=0.6))
    table = Table(url)
    dead_before = dead_lettered(settings, "max_deliveries")
    fresh_postgres.stop()
    ids = await put_many(queue, 20, tag="outage")
    retries_before = sample("fleetlog_worker_retries_total", reason="postgres")
    async with contextlib.AsyncExitStack() as workers:
        # More workers than deliveries allowed (3): each idle one would reclaim the batch once.
        for n in range(settings.max_deliveries + 2):
            await workers.enter_async_context(running_worker(settings, name=f"w{n}"))

        # Long enough for several claim_idle periods.
        async def long_outage() -> bool:
            return sample("fleetlog_worker_retries_total", reason="postgres") > retries_before + 150

        await wait_for(long_outage, what="a long outage")
        fresh_postgres.start()
        await wait_for(lambda: table.has(100), what="the logs stored after the outage")
    assert dead_lettered(settings, "max_deliveries") == dead_before
    await assert_stored_once(table, ids)


async def most_deliveries(redis: Redis, settings: Settings) -> int:
    counts = [0]
    for shard in range(settings.stream_shards):
        pending = await redis.xpending_range(
            KEYS.stream(shard), KEYS.group, min="-", max="+", count=1000
        )
        counts += [entry["times_delivered"] for entry in pending]
    return max(counts)


async def test_a_postgres_hang_longer_than_claim_idle_dead_letters_nothing(
    pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
) -> None:
    """Statements that hang (a lock, not a refused connection) time out within half of
    claim_idle, so the batch is held between attempts and no idle worker reclaims it."""
    settings = pipeline.model_copy(update={"claim_idle": timedelta(seconds=1.2)})
    dead_before = dead_lettered(settings, "max_deliveries")
    retries_before = sample("fleetlog_worker_retries_total", reason="postgres")
    blocker = await asyncpg.connect(table.database_url)
    try:
        hang = blocker.transaction()
        await hang.start()
        await blocker.execute("LOCK TABLE logs IN ACCESS EXCLUSIVE MODE")
        ids = await put_many(queue, 20, tag="hang")
        async with contextlib.AsyncExitStack() as workers:
            for n in range(settings.max_deliveries + 2):
                await workers.enter_async_context(running_worker(settings, name=f"w{n}"))

            async def hung_long() -> bool:
                # Each attempt waits for its timeout (0.6 s): 30 of them span many claim_idles.
                return sample("fleetlog_worker_retries_total", reason="postgres") > (
                    retries_before + 30
                )

            await wait_for(hung_long, what="attempts to time out on the lock", within=60.0)
            # Held between attempts, no entry was reclaimed (each reclaim counts a delivery).
            assert await most_deliveries(redis, settings) == 1
            await hang.rollback()
            await wait_for(lambda: table.has(100), what="the logs stored after the hang")
    finally:
        await blocker.close()
    assert dead_lettered(settings, "max_deliveries") == dead_before
    await assert_stored_once(table, ids)


async def test_a_backlog_that_filled_redis_to_maxmemory_drains(
    fresh_redis, pg_url: str, tmp_path, table: Table
) -> None:
    """At maxmemory under noeviction Redis refuses INCR but not XACK and XDEL: the worker must
    free what it stored before it bumps the cache versions, or it never drains."""
    settings = pipeline_settings(fresh_redis.url, pg_url, tmp_path)
    queue = RedisStreamQueue(
        Redis.from_url(fresh_redis.url), keys=KEYS, shards=4, max_backlog=100_000, retry_after=1
    )
    await queue.start()
    ids = await put_many(queue, 200)
    async with Redis.from_url(fresh_redis.url) as redis:
        used = int((await redis.info("memory"))["used_memory"])
        await redis.config_set("maxmemory", used - 64 * 1024)
        with pytest.raises(OutOfMemoryError):
            await redis.incr("one-more")
        async with running_worker(settings):
            await wait_for(lambda: drained(redis), what="the streams drained at maxmemory")
    await queue.close()
    await assert_stored_once(table, ids)


async def test_a_hook_redis_refuses_never_holds_a_shard(
    pipeline: Settings, queue: RedisStreamQueue, table: Table, redis: Redis
) -> None:
    """Redis at maxmemory refuses the cache-version INCRs: every batch is still acknowledged,
    and the devices left unbumped go again with the next batch."""
    calls: list[set[str]] = []

    async def refused(devices: set[str], days: set[str]) -> None:
        calls.append(set(devices))
        raise StoreUnavailable("Redis cannot bump cache versions", retry_after=1)

    one_entry_batches = pipeline.model_copy(update={"worker_batch_logs": 5})
    ids = await put_many(queue, 40)
    async with running_worker(one_entry_batches, on_stored=refused):
        await wait_for(lambda: drained(redis), what="the streams drained while the hook fails")
    await assert_stored_once(table, ids)
    assert len(calls) >= 8
    assert calls[-1] >= set().union(*calls[:-1])
