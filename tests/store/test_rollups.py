"""Rollups on SQLite and PostgreSQL: kept by the writers, equal to counting the logs, once."""

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import ColumnElement, insert, inspect, literal_column, select
from sqlalchemy.engine import Connection

from fleetlog.config import Settings
from fleetlog.counts import CountQuery, DeviceOrder, answerable, condition_of, whole_buckets
from fleetlog.errors import QueryTimeout
from fleetlog.records import LogRecord, encode_records
from fleetlog.retention.service import Retention
from fleetlog.search.grammar import parse
from fleetlog.search.matcher import LogFields, predicate
from fleetlog.store.bulk import BulkWriter, Packed
from fleetlog.store.engine import create_store_engine
from fleetlog.store.logs import LogStore, as_utc
from fleetlog.store.migrate import alembic_config, migrate
from fleetlog.store.rollups import Bucket, RollupStore, Span
from fleetlog.store.sqlite_writer import SqliteWriter
from fleetlog.store.tables import devices, level_counts, log_counts, logs
from tests.fixtures.pipeline import make_record

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DEVICES = ("cam-1", "cam-2", "cam-10", "sensor-1")
LEVELS = ("DEBUG", "INFO", "INFO", "WARNING", "ERROR", "INFO", "CRITICAL")
WORDS = ("pump stuck", "valve open", "pump valve stuck", "all good")


def fleet_logs(n: int = 400, *, start: datetime = NOW) -> list[LogRecord]:
    """Logs of four devices and every level, 37.25 s apart on average, some on the minute."""
    return [
        make_record(
            device_id=DEVICES[i % 4],
            level=LEVELS[i % 7],
            message=f"{WORDS[i % 4]} {i}",
            log_data={"i": i},
            ts=start + timedelta(seconds=37 * i, milliseconds=250 * (i % 3)),
            received_at=start + timedelta(seconds=40 * i),
        )
        for i in range(n)
    ]


Write = Callable[[list[LogRecord]], Awaitable[None]]


@dataclass
class Stack:
    """A store's writer and readers, as the service runs them."""

    write: Write
    store: LogStore
    rollups: RollupStore
    settings: Settings


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request, tmp_path) -> AsyncIterator[Stack]:
    overrides = {}
    if request.param == "postgresql":
        overrides = {"database_url": request.getfixturevalue("database_url"), "redis_url": "x"}
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", **overrides)
    engine = create_store_engine(settings)
    await migrate(engine)
    store = LogStore(engine)
    async with writing(settings) as write:
        yield Stack(write, store, RollupStore(store.reads), settings)
    await store.close()


@asynccontextmanager
async def writing(settings: Settings) -> AsyncIterator[Write]:
    if settings.database_url is None:
        sqlite = SqliteWriter(settings.sqlite_path, synchronous="NORMAL")

        async def write_sqlite(records: list[LogRecord]) -> None:
            await sqlite.insert_batch(records)

        yield write_sqlite
        await sqlite.close()
        return
    bulk = BulkWriter(settings.database_url, max_connections=2)
    await bulk.open()
    entries = itertools.count(1)

    async def write_postgres(records: list[LogRecord]) -> None:
        await bulk.write([Packed.of(0, f"{next(entries)}-0", encode_records(records))])

    yield write_postgres
    await bulk.close()


def expected(records: list[LogRecord], q: str, span: Span, group_by: str | None) -> list[Bucket]:
    """The buckets, counted in Python with the matcher."""
    matches = predicate(parse(q))
    found: Counter[tuple[datetime, str | None]] = Counter()
    for record in records:
        fields = LogFields(
            device_id=record.device_id,
            log_level=record.level,
            message=record.message,
            log_data=record.log_data,
        )
        if not span.since <= record.ts < span.until or not matches(fields):
            continue
        second = int((record.ts - EPOCH).total_seconds() // 1)
        start = EPOCH + timedelta(seconds=second // span.width * span.width)
        key = {None: None, "level": record.level, "device": record.device_id}[group_by]
        found[start, key] += 1
    return [Bucket(start, key, n) for (start, key), n in sorted(found.items(), key=str)]


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROLLUP_QUERIES = (
    "",
    "level:error",
    "level>=warning",
    "device:cam-1",
    "device:cam-*",
    "-device:cam-1 level<info",
    "device:cam-2 OR level:critical",
)
GROUPS = (None, "level", "device")


def ordered(buckets: list[Bucket]) -> list[Bucket]:
    return sorted(buckets, key=str)


class TestCounts:
    async def test_counts_from_the_rollups_equal_counts_by_scanning(self, stack: Stack) -> None:
        records = fleet_logs()
        for part in (records[:150], records[150:151], records[151:]):
            await stack.write(part)
        for interval, q, group_by in itertools.product(
            (60, 300, 3600, 86400), ROLLUP_QUERIES, GROUPS
        ):
            span = whole_buckets(NOW + timedelta(minutes=17), NOW + timedelta(hours=3), interval)
            plan = parse(q)
            assert answerable(plan, span)
            by_device = "device" in q
            rolled = await stack.rollups.count(
                condition_of(plan), span, group_by=group_by, by_device=by_device
            )
            scanned = await stack.rollups.scan(
                condition_of(plan), span, group_by=group_by, max_seconds=10
            )
            want = expected(records, q, span, group_by)
            assert ordered(rolled) == want, (interval, q, group_by)
            assert ordered(scanned) == want, (interval, q, group_by)

    @pytest.mark.parametrize("q", ["pump", '"valve stuck" device:cam-*', "attr.i>100 level:info"])
    async def test_other_queries_are_counted_by_scanning(self, stack: Stack, q: str) -> None:
        records = fleet_logs()
        await stack.write(records)
        span = whole_buckets(NOW, NOW + timedelta(hours=5), 3600)
        assert not answerable(parse(q), span)
        for group_by in GROUPS:
            scanned = await stack.rollups.scan(
                condition_of(parse(q)), span, group_by=group_by, max_seconds=10
            )
            assert ordered(scanned) == expected(records, q, span, group_by)

    async def test_a_span_off_the_minutes_is_not_for_the_rollups(self, stack: Stack) -> None:
        span = Span(NOW + timedelta(seconds=30), NOW + timedelta(hours=1), 60)
        assert not answerable(parse("level:error"), span)
        with pytest.raises(ValueError, match="whole minutes"):
            await stack.rollups.count(condition_of(parse("")), span, group_by=None, by_device=False)

    async def test_times_before_1970_fall_in_their_own_buckets(self, stack: Stack) -> None:
        old = datetime(1969, 12, 31, 23, 58, 30, tzinfo=UTC)
        records = fleet_logs(8, start=old)
        await stack.write(records)
        span = whole_buckets(old, old + timedelta(minutes=10), 300)
        everything = condition_of(parse(""))
        want = expected(records, "", span, None)
        rolled = await stack.rollups.count(everything, span, group_by=None, by_device=False)
        assert ordered(rolled) == want
        assert ordered(await stack.rollups.scan(everything, span, group_by=None)) == want


class TestKept:
    async def test_devices_and_level_totals_follow_the_logs(self, stack: Stack) -> None:
        records = fleet_logs(100)
        await stack.write(records[:60])
        await stack.write(records[60:])
        counts = await stack.store.counts()
        assert counts.total == 100
        assert counts.by_level == dict(Counter(record.level for record in records))
        last_seen = {record.device_id: record.received_at for record in records}
        assert counts.recent_devices == sorted(last_seen, key=last_seen.get, reverse=True)
        async with stack.store.engine.connect() as conn:
            rows = (await conn.execute(select(devices).order_by(devices.c.device_id))).all()
        first_seen = {}
        for record in reversed(records):
            first_seen[record.device_id] = record.received_at
        assert [(row.device_id, as_utc(row.first_seen), as_utc(row.last_seen)) for row in rows] == [
            (device, first_seen[device], last_seen[device]) for device in sorted(last_seen)
        ]


async def test_an_entry_delivered_again_adds_nothing_to_the_rollups(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url, redis_url="x")
    engine = create_store_engine(settings)
    await migrate(engine)
    writer = BulkWriter(database_url, max_connections=2)
    await writer.open()
    store = LogStore(engine)
    try:
        records = fleet_logs(50)
        batch = [Packed.of(0, "1-0", encode_records(records[:30]))]
        assert (await writer.write(batch)).rows == 30
        before = await rollup_rows(store)
        assert (await writer.write(batch)).rows == 0
        assert await rollup_rows(store) == before
        await writer.write([*batch, Packed.of(0, "2-0", encode_records(records[30:]))])
        assert (await store.counts()).total == 50
    finally:
        await writer.close()
        await store.close()


async def rollup_rows(store: LogStore) -> list[list[tuple[object, ...]]]:
    async with store.engine.connect() as conn:
        return [
            [tuple(row) for row in (await conn.execute(select(table).order_by(*table.c))).all()]
            for table in (log_counts, level_counts, devices)
        ]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request, tmp_path) -> Settings:
    overrides = {}
    if request.param == "postgresql":
        overrides = {"database_url": request.getfixturevalue("database_url"), "redis_url": "x"}
    return Settings(_env_file=None, data_dir=tmp_path / "data", **overrides)


def alembic_on(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


async def test_the_migration_fills_the_rollups_and_goes_back(store_settings: Settings) -> None:
    engine = create_store_engine(store_settings)
    store = LogStore(engine)
    records = fleet_logs(120)
    try:
        await migrate(engine, "0004")
        async with engine.begin() as conn:
            await conn.execute(insert(logs), [row_of(record) for record in records])
        await migrate(engine, "0005")
        counts = await store.counts()
        assert counts.by_level == dict(Counter(record.level for record in records))
        span = whole_buckets(NOW, NOW + timedelta(hours=2), 300)
        rolled = await RollupStore(store.reads).count(
            condition_of(parse("")), span, group_by="device", by_device=True
        )
        assert ordered(rolled) == expected(records, "", span, "device")
        async with engine.begin() as conn:
            await conn.run_sync(alembic_on, "downgrade", "0004")
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert not {"log_counts", "level_counts", "devices"} & set(names)
        await migrate(engine)
        assert (await store.counts()).total == len(records)
    finally:
        await store.close()


def row_of(record: LogRecord) -> dict[str, object]:
    return {
        "device_id": record.device_id,
        "log_level": record.level,
        "message": record.message,
        "log_data": record.log_data,
        "created_at": record.ts,
        "received_at": record.received_at,
    }


class TestDevices:
    @pytest.mark.parametrize("sort", ["device", "last_seen", "total", "errors", "silent_for"])
    async def test_pages_hold_every_device_once_in_order(self, stack: Stack, sort: str) -> None:
        records = [
            make_record(
                device_id=f"d{i % 9}",
                level="ERROR" if i % 4 == 0 else "INFO",
                ts=NOW + timedelta(minutes=i),
                received_at=NOW + timedelta(seconds=i % 5),
            )
            for i in range(60)
        ]
        await stack.write(records)
        counter = CountQuery(stack.rollups, query_timeout=timedelta(seconds=10), clock=lambda: NOW)
        for descending in (False, True):
            order = DeviceOrder(sort, descending=descending)  # type: ignore[arg-type]
            whole = await counter.devices(
                None, since="2026-11-25T00:00:00Z", order=order, limit=100, cursor=None
            )
            assert len(whole.data) == 9
            assert sum(row.total for row in whole.data) == 60
            paged, cursor = [], None
            while True:
                page = await counter.devices(
                    None, since="2026-11-25T00:00:00Z", order=order, limit=2, cursor=cursor
                )
                paged += page.data
                if (cursor := page.next_cursor) is None:
                    break
            assert paged == whole.data


async def test_retention_takes_the_counts_of_the_logs_it_drops(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url, redis_url="x")
    engine = create_store_engine(settings)
    await migrate(engine)
    writer = BulkWriter(database_url, max_connections=1)
    await writer.open()
    store = LogStore(engine)
    try:
        old, new = fleet_logs(10, start=NOW - timedelta(days=40)), fleet_logs(7)
        await writer.write([Packed.of(0, "1-0", encode_records([*old, *new]))])
        kept_30_days = settings.model_copy(update={"retention_days": 30})
        await Retention(engine, kept_30_days, clock=lambda: NOW).apply()
        counts = await store.counts()
        assert counts.total == 7
        span = whole_buckets(NOW - timedelta(days=50), NOW + timedelta(days=1), 86400)
        everything = condition_of(parse(""))
        rolled = await RollupStore(store.reads).count(
            everything, span, group_by=None, by_device=True
        )
        assert rolled == await RollupStore(store.reads).scan(everything, span, group_by=None)
    finally:
        await writer.close()
        await store.close()


async def test_workers_committing_the_same_counts_at_once_all_commit_them(
    database_url: str,
) -> None:
    settings = Settings(_env_file=None, database_url=database_url, redis_url="x")
    engine = create_store_engine(settings)
    await migrate(engine)
    writer = BulkWriter(database_url, max_connections=8)
    await writer.open()
    store = LogStore(engine)
    try:
        # Every batch counts into the same minutes of the same devices, in another order.
        records = fleet_logs(240)
        batches = [records[i::8][:: 1 if i % 2 else -1] for i in range(8)]
        for _ in range(5):
            writes = [
                writer.write([Packed.of(0, f"{next(ENTRIES)}-0", encode_records(batch))])
                for batch in batches
            ]
            await asyncio.gather(*writes)
        counts = await store.counts()
        assert counts.total == 5 * 240
        span = whole_buckets(NOW, NOW + timedelta(hours=3), 60)
        rolled = await RollupStore(store.reads).count(
            condition_of(parse("")), span, group_by="device", by_device=True
        )
        assert sum(bucket.count for bucket in rolled) == 5 * 240
    finally:
        await writer.close()
        await store.close()


ENTRIES = itertools.count(1)


async def test_a_devices_last_seen_moves_by_over_a_second_on_postgresql(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url, redis_url="x")
    engine = create_store_engine(settings)
    await migrate(engine)
    writer = BulkWriter(database_url, max_connections=1)
    await writer.open()
    try:
        seen = []
        for n, received in enumerate((0.0, 0.5, 2.0, -5.0)):
            record = make_record(device_id="cam-1", received_at=NOW + timedelta(seconds=received))
            await writer.write([Packed.of(0, f"{n + 1}-0", encode_records([record]))])
            async with engine.connect() as conn:
                row = (await conn.execute(select(devices))).one()
            seen.append((row.first_seen - NOW, row.last_seen - NOW))
        assert [(first.total_seconds(), last.total_seconds()) for first, last in seen] == [
            (0.0, 0.0),
            (0.0, 0.0),
            (0.0, 2.0),
            (-5.0, 2.0),
        ]
    finally:
        await writer.close()
        await engine.dispose()


# A condition that would take minutes on either store.
SLOW = (
    "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)"
    " SELECT count(*) FROM c) > 0"
)


async def test_a_scan_past_its_time_is_cancelled_in_the_database(stack: Stack) -> None:
    await stack.write(fleet_logs(3))
    span = whole_buckets(NOW, NOW + timedelta(hours=1), 3600)

    def slow(dialect: str, table: object) -> ColumnElement[bool]:
        return literal_column(SLOW)

    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        await stack.rollups.scan(slow, span, group_by=None, max_seconds=0.2)
    assert time.monotonic() - started < 5
    everything = condition_of(parse(""))
    assert await stack.rollups.scan(everything, span, group_by=None, max_seconds=5)
