"""The embedded writer: one group, one transaction, ids in order, even when split in parts."""

import asyncio
import fcntl
import os
import sys
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy.dialects import sqlite

from fleetlog.errors import StoreUnavailable
from fleetlog.records import LogRecord
from fleetlog.store.engine import create_store_engine
from fleetlog.store.logs import LogStore
from fleetlog.store.sqlite_writer import (
    GIL_SWITCH_INTERVAL_S,
    SqliteWriter,
    as_rows,
    sqlite_time,
    turns_path,
)
from fleetlog.store.tables import logs
from tests.fixtures.pipeline import sample, wait_for


def records(n: int, **overrides) -> list[LogRecord]:
    now = datetime.now(UTC)
    fields = {"device_id": "d1", "level": "INFO", "log_data": {"pad": "x" * 100}}
    fields.update(overrides)
    return [LogRecord(message=f"m{i}", ts=now, received_at=now, **fields) for i in range(n)]


@pytest.fixture
async def store(settings):
    log_store = LogStore(create_store_engine(settings))
    yield log_store
    await log_store.close()


async def test_a_group_larger_than_a_statement_goes_in_parts_in_order(settings, store):
    writer = SqliteWriter(settings.sqlite_path, synchronous="FULL", max_statement_bytes=1000)
    ids = await writer.insert_batch(records(40))
    await writer.close()
    assert ids == list(range(ids[0], ids[0] + 40))
    stored = {log.id: log.message for log in (await store.latest("d1", limit=100)).logs}
    assert [stored[i] for i in ids] == [f"m{i}" for i in range(40)]


async def test_a_part_that_fails_stores_nothing_of_the_group(settings, store):
    writer = SqliteWriter(settings.sqlite_path, synchronous="FULL", max_statement_bytes=1000)
    group = records(30) + records(1, level=None)  # NOT NULL refuses the last part
    with pytest.raises(StoreUnavailable):
        await writer.insert_batch(group)
    assert await writer.insert_batch(records(2)) == [1, 2]
    await writer.close()
    assert len((await store.latest("d1", limit=100)).logs) == 2


async def test_a_group_that_fails_counts_nothing(settings, store):
    writer = SqliteWriter(settings.sqlite_path, synchronous="FULL", max_statement_bytes=1000)
    with pytest.raises(StoreUnavailable):
        await writer.insert_batch(records(30) + records(1, level=None))
    await writer.insert_batch(records(2))
    await writer.close()
    counts = await store.counts()
    assert (counts.total, counts.by_level, counts.recent_devices) == (2, {"INFO": 2}, ["d1"])


async def test_the_time_waited_for_the_turn_to_write_and_held_is_measured(settings):
    """Another process holding the turn for `held` seconds shows in the wait, not the hold."""
    writer = SqliteWriter(settings.sqlite_path, synchronous="FULL")
    wait = ("fleetlog_sqlite_write_wait_seconds_sum", "fleetlog_sqlite_write_wait_seconds_count")
    hold = ("fleetlog_sqlite_write_held_seconds_sum", "fleetlog_sqlite_write_held_seconds_count")
    before = {name: sample(name) for name in wait + hold}
    other = os.open(turns_path(settings.sqlite_path), os.O_RDWR | os.O_CREAT, 0o600)
    held = 0.2
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        insert = asyncio.create_task(writer.insert_batch(records(3)))

        async def connected() -> bool:
            return writer._db is not None

        # The writer opens its connection, then asks for the turn.
        await wait_for(connected, what="the writer's connection")
        await asyncio.sleep(held)
        assert not insert.done()
        fcntl.flock(other, fcntl.LOCK_UN)
        assert await insert == [1, 2, 3]
    finally:
        os.close(other)
        await writer.close()
    grew = {name: sample(name) - before[name] for name in wait + hold}
    assert grew[wait[1]] == grew[hold[1]] == 1
    assert grew[wait[0]] >= held * 0.9
    assert grew[hold[0]] > 0


async def test_the_writer_thread_waits_at_most_a_tenth_of_a_millisecond_to_ask_for_the_gil(
    settings,
):
    default = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        writer = SqliteWriter(settings.sqlite_path, synchronous="FULL")
        await writer.close()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S) == 0.0001
    finally:
        sys.setswitchinterval(default)


async def test_log_data_is_stored_as_the_compact_json_of_what_was_given(settings, store):
    given = [
        {},
        {"pad": "x"},
        {"quote": 'say "hi"', "back\\slash": "a\\b", "tab\tnewline\n": "\u001f\r"},
        {"é": "ünïcödé 🚀", "nested": {"list": [1, -2.5, 1e100, True, None, {"deep": []}]}},
        {"big": 2**63 - 1, "small": -(2**63), "float": 0.1},
    ]
    writer = SqliteWriter(settings.sqlite_path, synchronous="FULL")
    await writer.insert_batch([record for data in given for record in records(1, log_data=data)])
    await writer.close()
    stored = [log.log_data for log in reversed((await store.latest("d1", limit=10)).logs)]
    assert stored == [orjson.dumps(data).decode() for data in given]
    assert [orjson.loads(text) for text in stored] == given


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 30, 19, 51, 8, 837118, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999),
        datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_times_are_written_as_sqlalchemy_writes_them(value):
    """The writer's rows are read back, and compared in queries, by SQLAlchemy's DateTime."""
    dialect = sqlite.dialect()
    written_by_sqlalchemy = logs.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert sqlite_time(value) == written_by_sqlalchemy(value)


def test_each_event_time_of_a_group_is_written_as_it_would_be_alone():
    """Times in one second, across seconds, days and zones, out of order and repeated."""
    now = datetime(2026, 12, 1, 23, 59, 59, 999_998, tzinfo=UTC)
    times = [
        now,
        now + timedelta(microseconds=1),
        now + timedelta(microseconds=2),
        now - timedelta(days=1),
        now,
        now.astimezone(timezone(timedelta(hours=2))),
        now + timedelta(seconds=1),
        now,
    ]
    group = [
        LogRecord("d1", "INFO", f"m{i}", {}, ts=ts, received_at=now) for i, ts in enumerate(times)
    ]
    assert [row[4] for row in as_rows(group)] == [sqlite_time(ts) for ts in times]
    assert [row[4] for row in as_rows(group)][:3] == [
        "2026-12-01 23:59:59.999998",
        "2026-12-01 23:59:59.999999",
        "2026-12-02 00:00:00.000000",
    ]
