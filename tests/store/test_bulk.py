"""BulkWriter on a real PostgreSQL: COPY batches exactly once, refuse bad rows, keep partitions."""

from datetime import UTC, datetime, timedelta

import pytest

from fleetlog.errors import RejectedBatch, StoreUnavailable
from fleetlog.store.bulk import BulkWriter, Keyed
from fleetlog.store.engine import create_store_engine
from fleetlog.store.logs import LogStore
from fleetlog.store.partitions import partition_name
from tests.fixtures.pipeline import Table, make_record
from tests.fixtures.servers import PostgresServer

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def keyed(n: int, *, prefix: str = "0-1-0", **overrides: object) -> list[Keyed]:
    return [Keyed(f"{prefix}-{i}", make_record(message=f"log {i}", **overrides)) for i in range(n)]


class TestWrite:
    async def test_a_batch_written_twice_is_stored_once(
        self, writer: BulkWriter, table: Table
    ) -> None:
        batch = keyed(500)
        assert await writer.write(batch) == 500
        assert await writer.write(batch) == 0
        assert await writer.write([*batch[:10], *keyed(5, prefix="0-2-0")]) == 5
        assert await table.count() == 505

    async def test_rows_read_back_through_the_log_store(self, writer: BulkWriter, pipeline) -> None:
        older = NOW - timedelta(days=3)
        await writer.write(
            [
                Keyed("0-1-0-0", make_record(device_id="cam-7", ts=older, log_data={"a": [1]})),
                Keyed("0-1-0-1", make_record(device_id="cam-7", ts=NOW, level="ERROR")),
                Keyed("0-1-0-2", make_record(device_id="cam-8")),
            ]
        )
        store = LogStore(create_store_engine(pipeline))
        try:
            latest = await store.latest("cam-7", limit=10)
            counts = await store.counts()
        finally:
            await store.close()
        assert [(log.created_at, log.log_level) for log in latest] == [
            (NOW, "ERROR"),
            (older, "INFO"),
        ]
        assert latest[1].log_data == {"a": [1]}
        assert counts.total == 3
        assert counts.by_level == {"INFO": 2, "ERROR": 1}

    async def test_a_row_postgresql_refuses_rejects_the_batch(
        self, writer: BulkWriter, table: Table
    ) -> None:
        with pytest.raises(RejectedBatch, match="0x00"):
            await writer.write([*keyed(3), Keyed("0-9-0-0", make_record(message="nul\x00"))])
        assert await table.count() == 0

    async def test_postgresql_down_is_store_unavailable(self, fresh_postgres: PostgresServer):
        writer = BulkWriter(fresh_postgres.dsn(), max_connections=1)
        await writer.open()
        try:
            fresh_postgres.stop()
            with pytest.raises(StoreUnavailable):
                await writer.write(keyed(1))
        finally:
            await writer.close()


class TestPartitions:
    async def test_days_ahead_get_partitions_and_far_off_clocks_the_default(
        self, writer: BulkWriter, table: Table
    ) -> None:
        done = await writer.maintain(ahead=2, retention_days=None, today=NOW)
        days = [NOW.date() + timedelta(days=d) for d in range(-1, 3)]
        assert done.created == [partition_name(day) for day in days]
        await writer.write(
            [
                Keyed("0-1-0-0", make_record(ts=NOW)),
                Keyed("0-1-0-1", make_record(ts=datetime(2001, 1, 1, tzinfo=UTC))),
                Keyed("0-1-0-2", make_record(ts=NOW + timedelta(days=30))),
            ]
        )
        where = "SELECT string_agg(tableoid::regclass::text, ',' ORDER BY created_at) FROM logs"
        assert await table.fetchval(where) == "logs_default,logs_p20261125,logs_default"
        assert (await writer.maintain(ahead=2, retention_days=None, today=NOW)).created == []

    async def test_a_late_partition_takes_its_rows_from_the_default(
        self, writer: BulkWriter, table: Table
    ) -> None:
        future = NOW + timedelta(days=10)
        await writer.write(keyed(3, ts=future))
        await writer.maintain(ahead=10, retention_days=None, today=NOW)
        where = "SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM logs"
        assert await table.fetchval(where) == partition_name(future.date())
        assert await writer.write(keyed(3, ts=future)) == 0

    async def test_retention_drops_whole_partitions(self, writer: BulkWriter, table: Table):
        old_day = NOW - timedelta(days=40)
        await writer.maintain(ahead=1, retention_days=None, today=old_day)
        await writer.maintain(ahead=1, retention_days=None, today=NOW)
        await writer.write(keyed(4, prefix="0-1-0", ts=old_day))
        await writer.write(keyed(2, prefix="0-2-0", ts=NOW))
        await writer.write(keyed(1, prefix="0-3-0", ts=datetime(2001, 1, 1, tzinfo=UTC)))

        done = await writer.maintain(ahead=1, retention_days=30, today=NOW)

        assert partition_name(old_day.date()) in done.dropped
        assert partition_name(NOW.date()) not in done.dropped
        assert done.default_rows_deleted == 1
        assert await table.count() == 2


async def test_the_migration_builds_a_partitioned_table_keyed_by_ingest_key(table: Table):
    assert await table.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'logs'") == "p"
    unique = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_logs_ingest_key'"
    assert "UNIQUE" in await table.fetchval(unique)
    assert "(ingest_key, created_at)" in await table.fetchval(unique)
