"""BulkWriter on a real PostgreSQL: COPY batches exactly once, refuse bad rows, keep partitions."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import orjson
import pytest
from asyncpg.transaction import Transaction  # type: ignore[import-untyped]

from fleetlog.config import Settings
from fleetlog.errors import RejectedBatch, StoreUnavailable
from fleetlog.records import LogRecord, encode_records
from fleetlog.store.bulk import BulkWriter, Packed
from fleetlog.store.engine import create_store_engine
from fleetlog.store.logs import LogStore
from fleetlog.store.migrate import migrate
from fleetlog.store.partitions import partition_name
from tests.fixtures.pipeline import Table, make_record
from tests.fixtures.servers import PostgresServer

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def entry(key: str, payload: bytes) -> Packed:
    """The entry `<shard>-<ms>-<seq>` with this payload."""
    shard, entry_id = key.split("-", 1)
    return Packed.of(int(shard), entry_id, payload)


def packed(n: int, *, key: str = "0-1-0", **overrides: object) -> Packed:
    """One stream entry of `n` logs, as the worker hands it over."""
    records = [make_record(message=f"log {i}", **overrides) for i in range(n)]
    return entry(key, encode_records(records))


def written(*records: LogRecord, key: str = "0-1-0") -> list[Packed]:
    return [entry(key, encode_records(records))]


def wire(*rows: list[object]) -> Packed:
    """An entry written by hand in the wire format, whatever its records hold."""
    return entry("0-9-0", orjson.dumps([1, list(rows)]))


GOOD_ROW = ["cam-7", "INFO", "ok", {}, 0, 0]
STORE_ENTRY = "INSERT INTO stored_entries VALUES ($1, $2, $3, $4)"


class TestWrite:
    async def test_a_batch_written_twice_is_stored_once(
        self, writer: BulkWriter, table: Table
    ) -> None:
        batch = [packed(250, key="0-1-0"), packed(250, key="0-1-1")]
        assert (await writer.write(batch)).rows == 500
        assert (await writer.write(batch)).rows == 0
        assert (await writer.write([batch[0], packed(5, key="0-2-0")])).rows == 5
        assert await table.count() == 505
        keys = await table.fetchval("SELECT array_agg(ingest_key ORDER BY id) FROM logs")
        assert keys[:2] == ["0-1-0-0", "0-1-0-1"]
        assert keys[-1] == "0-2-0-4"

    async def test_an_entry_stored_by_a_concurrent_transaction_is_skipped_once_it_commits(
        self, writer: BulkWriter, table: Table
    ) -> None:
        batch = [packed(3, key="0-1-0"), packed(2, key="0-1-1")]
        async with storing_elsewhere(table, batch[0]) as other:
            # Waits on the other transaction's ledger row, then finds the entry stored.
            write = asyncio.create_task(writer.write(batch))
            await wait_for_lock_wait(table)
            assert not write.done()
            await other.commit()
            assert (await write).rows == 2
        assert await table.count() == 2

    async def test_an_entry_whose_concurrent_transaction_rolls_back_is_stored(
        self, writer: BulkWriter, table: Table
    ) -> None:
        batch = [packed(3, key="0-1-0")]
        async with storing_elsewhere(table, batch[0]) as other:
            write = asyncio.create_task(writer.write(batch))
            await wait_for_lock_wait(table)
            await other.rollback()
            assert (await write).rows == 3

    async def test_the_devices_and_days_of_the_new_rows_are_named(self, writer: BulkWriter) -> None:
        late = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)
        batch = [
            packed(2, key="0-1-0", device_id="cam-7"),
            packed(1, key="0-1-1", device_id="x", ts=late),
        ]
        first = await writer.write(batch)
        assert first.devices == {"cam-7", "x"}
        assert first.days == {datetime.now(UTC).date().isoformat(), "2026-11-28"}
        again = await writer.write(batch)
        assert (again.rows, again.devices, again.days) == (0, set(), set())

    @pytest.mark.parametrize(
        "ts",
        [
            datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(2026, 11, 25, 12, 0, 0, 123_457, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        ],
    )
    async def test_event_times_are_stored_to_the_microsecond(
        self, writer: BulkWriter, table: Table, ts: datetime
    ) -> None:
        await writer.write(written(make_record(ts=ts, received_at=ts)))
        assert await table.fetchval("SELECT ARRAY[created_at, received_at] FROM logs") == [ts, ts]

    @pytest.mark.parametrize(
        "row",
        [
            ["cam-7", "LOUD", "ok", {}, 0, 0],
            ["cam-7", "INFO", "ok", [], 0, 0],
            ["cam-7", "INFO", 5, {}, 0, 0],
            [7, "INFO", "ok", {}, 0, 0],
            ["cam-7", "INFO", "ok", {}, 1.5, 0],
            ["cam-7", "INFO", "ok", {}, "soon", 0],
            ["cam-7", "INFO", "ok", {}, "1764064800000000", 0],
            ["cam-7", "INFO", "ok", {}, 0, "1764064800000000"],
            ["cam-7", "INFO", "ok", {}, 0],
            ["cam-7", "INFO", "ok", {}, 0, 0, "extra"],
        ],
    )
    async def test_a_record_of_the_wrong_shape_rejects_the_batch(
        self, writer: BulkWriter, table: Table, row: list[object]
    ) -> None:
        with pytest.raises(RejectedBatch):
            await writer.write([packed(3), wire(GOOD_ROW, row)])
        assert await table.count() == 0

    async def test_rows_read_back_through_the_log_store(self, writer: BulkWriter, pipeline) -> None:
        older = NOW - timedelta(days=3)
        await writer.write(
            written(
                make_record(device_id="cam-7", ts=older, log_data={"a": [1]}),
                make_record(device_id="cam-7", ts=NOW, level="ERROR"),
                make_record(device_id="cam-8"),
            )
        )
        store = LogStore(create_store_engine(pipeline))
        try:
            latest = (await store.latest("cam-7", limit=10)).logs
            counts = await store.counts()
        finally:
            await store.close()
        assert [(log.created_at, log.log_level) for log in latest] == [
            (NOW, "ERROR"),
            (older, "INFO"),
        ]
        assert orjson.loads(latest[1].log_data) == {"a": [1]}
        assert counts.total == 3
        assert counts.by_level == {"INFO": 2, "ERROR": 1}

    async def test_a_row_postgresql_refuses_rejects_the_batch(
        self, writer: BulkWriter, table: Table
    ) -> None:
        with pytest.raises(RejectedBatch, match="0000"):
            await writer.write([packed(3), *written(make_record(message="nul\x00"), key="0-9-0")])
        assert await table.count() == 0

    async def test_postgresql_down_is_store_unavailable(self, fresh_postgres: PostgresServer):
        writer = BulkWriter(fresh_postgres.dsn(), max_connections=1)
        await writer.open()
        try:
            fresh_postgres.stop()
            with pytest.raises(StoreUnavailable):
                await writer.write([packed(1)])
        finally:
            await writer.close()


class TestLedger:
    async def test_forgotten_entries_are_stored_again_if_delivered(
        self, writer: BulkWriter, table: Table
    ) -> None:
        batch = [packed(1, key="1-5-0"), packed(1, key="1-5-1"), packed(1, key="1-6-0")]
        await writer.write([*batch, packed(1, key="2-1-0")])
        assert await writer.forget(1, (5, 1), stored_before=timedelta(hours=1)) == 0
        assert await writer.forget(1, (5, 1), stored_before=timedelta(0)) == 1
        assert await writer.forget(1, (5, 1), stored_before=timedelta(0)) == 0
        assert (await writer.write(batch)).rows == 1
        assert await table.fetchval("SELECT count(*) FROM stored_entries") == 4

    async def test_an_entry_id_given_again_to_another_payload_is_stored(
        self, writer: BulkWriter, table: Table
    ) -> None:
        await writer.write([packed(2, key="0-1-0")])
        assert (await writer.write([packed(3, key="0-1-0", device_id="other")])).rows == 3
        assert await table.count() == 5

    async def test_entries_stored_before_the_ledger_are_skipped_whatever_their_payload(
        self, writer: BulkWriter, table: Table
    ) -> None:
        conn = await asyncpg.connect(table.database_url)
        try:
            await conn.execute("INSERT INTO stored_entries VALUES (0, 1, 0, -1)")
        finally:
            await conn.close()
        assert (await writer.write([packed(2, key="0-1-0"), packed(1, key="0-1-1")])).rows == 1


@asynccontextmanager
async def storing_elsewhere(table: Table, entry: Packed) -> AsyncIterator[Transaction]:
    """Another transaction, not yet committed, that has written `entry`'s ledger row."""
    conn = await asyncpg.connect(table.database_url)
    try:
        other = conn.transaction()
        await other.start()
        await conn.execute(STORE_ENTRY, entry.shard, entry.entry_ms, entry.entry_seq, entry.digest)
        yield other
    finally:
        await conn.close()


async def wait_for_lock_wait(table: Table) -> None:
    """Until some session waits on a lock (a transaction's uncommitted ledger row)."""
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    for _ in range(500):
        if await table.fetchval(waiting):
            return
        await asyncio.sleep(0.01)
    pytest.fail("no session waited on a lock")


class TestPartitions:
    async def test_days_ahead_get_partitions_and_far_off_clocks_the_default(
        self, writer: BulkWriter, table: Table
    ) -> None:
        done = await writer.maintain(ahead=2, today=NOW)
        days = [NOW.date() + timedelta(days=d) for d in range(-1, 3)]
        assert done.created == [partition_name(day) for day in days]
        await writer.write(
            written(
                make_record(ts=NOW),
                make_record(ts=datetime(2001, 1, 1, tzinfo=UTC)),
                make_record(ts=NOW + timedelta(days=30)),
            )
        )
        where = "SELECT string_agg(tableoid::regclass::text, ',' ORDER BY created_at) FROM logs"
        assert await table.fetchval(where) == "logs_default,logs_p20261125,logs_default"
        assert (await writer.maintain(ahead=2, today=NOW)).created == []

    async def test_a_late_partition_takes_its_rows_from_the_default(
        self, writer: BulkWriter, table: Table
    ) -> None:
        future = NOW + timedelta(days=10)
        batch = [packed(3, ts=future)]
        await writer.write(batch)
        await writer.maintain(ahead=10, today=NOW)
        where = "SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM logs"
        assert await table.fetchval(where) == partition_name(future.date())
        assert (await writer.write(batch)).rows == 0


async def test_the_migrations_build_a_partitioned_table_and_a_ledger_of_entries(table: Table):
    assert await table.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'logs'") == "p"
    unique = "SELECT count(*) FROM pg_indexes WHERE tablename = 'logs' AND indexdef LIKE '%UNIQUE%'"
    assert await table.fetchval(unique) == 0
    ledger_key = "SELECT indexdef FROM pg_indexes WHERE tablename = 'stored_entries'"
    assert "(shard, entry_ms, entry_seq, digest)" in await table.fetchval(ledger_key)


async def test_migration_0003_fills_the_ledger_with_the_last_week_of_entries(database_url: str):
    settings = Settings(_env_file=None, database_url=database_url, redis_url="redis://unused")
    engine = create_store_engine(settings)
    try:
        await migrate(engine, "0002")
        conn = await asyncpg.connect(database_url)
        try:
            insert = (
                "INSERT INTO logs (device_id, log_level, message, log_data, created_at, "
                "received_at, ingest_key) VALUES ('d', 'INFO', 'm', '{}', now(), $1, $2)"
            )
            await conn.execute(insert, datetime.now(UTC), "2-1764064800000-3-0")
            await conn.execute(insert, datetime.now(UTC), "2-1764064800000-3-1")
            await conn.execute(insert, datetime.now(UTC) - timedelta(days=8), "1-5-0-0")
        finally:
            await conn.close()
        await migrate(engine)
    finally:
        await engine.dispose()
    table = Table(database_url)
    ledger = "SELECT array_agg(ARRAY[shard, entry_ms, entry_seq, digest]) FROM stored_entries"
    assert await table.fetchval(ledger) == [[2, 1764064800000, 3, -1]]
