"""Retention passes on both stores, while ingest runs: exactly what the rules say goes, archived
first, with the rollups and the word index following, and a preview that matches the pass."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import text

from fleetlog.counts import condition_of, whole_buckets
from fleetlog.records import LogLevel, LogRecord
from fleetlog.retention import batches
from fleetlog.retention.archive import ArchiveFailed
from fleetlog.retention.locks import RetentionBusy
from fleetlog.retention.report import Report
from fleetlog.retention.rules import Rule
from fleetlog.retention.service import Retention
from fleetlog.search.grammar import parse
from fleetlog.store.bulk import BulkWriter
from fleetlog.store.partitions import partition_name
from fleetlog.store.rollups import RollupStore
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import (
    pipeline_settings,
    retention_passes,
    running_worker,
    wait_for,
    wait_for_a_retention_pass,
)
from tests.fixtures.records import make_log

if TYPE_CHECKING:
    from tests.fixtures.stores import StoreUnderTest

pytest_plugins = ["tests.fixtures.stores"]

NOW = datetime.now(UTC)
AGES_DAYS = (0.5, 1.5, 3, 40, 41)
DEVICES = ("cam-1", "test-1", "pump-2")


def kept_days(device_id: str, level: str) -> int:
    """The rules of these tests, written out: test-* 1 day, DEBUG 2 days, else 30 days."""
    if device_id.startswith("test-"):
        return 1
    return 2 if level == "DEBUG" else 30


def seed_logs() -> list[LogRecord]:
    return [
        LogRecord(
            device_id=device,
            level=level,
            message=f"seeded {device} {level} {age} {i}",
            log_data={"age": age, "i": i},
            ts=NOW - timedelta(days=age, seconds=i),
            received_at=NOW - timedelta(days=age, seconds=i),
        )
        for age in AGES_DAYS
        for device in DEVICES
        for level in ("DEBUG", "INFO")
        for i in range(12)
    ]


def kept(record: LogRecord) -> bool:
    return NOW - record.ts < timedelta(days=kept_days(record.device_id, record.level))


async def rows(under_test: StoreUnderTest, sql: str) -> list[Any]:
    async with under_test.store.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def add_rules(retention: Retention) -> None:
    await retention.rules.add(Rule(None, LogLevel.DEBUG, None, 2))
    await retention.rules.add(Rule(None, None, "test-", 1))


async def apply_when_free(retention: Retention) -> Report:
    """A pass, once the one a server process runs as it starts is done."""
    while True:
        try:
            return await retention.apply()
        except RetentionBusy:
            await asyncio.sleep(0.05)


@asynccontextmanager
async def ingest_server(
    under_test: StoreUnderTest, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An API process on the store (and the pipeline's worker, on PostgreSQL). Embedded, it
    yields once the server's own retention pass at start is over, so that the pass under test
    is the only one at work (the server's, without an archive, would take logs unarchived)."""
    if under_test.kind == "sqlite":
        before = retention_passes()
        async with running_app(under_test.settings) as app, client_of(app) as http:
            await wait_for_a_retention_pass(before)
            yield http
        return
    assert under_test.settings.database_url is not None
    redis_url = request.getfixturevalue("redis_url")
    settings = pipeline_settings(redis_url, under_test.settings.database_url, tmp_path)
    async with (
        running_app(settings) as app,
        client_of(app) as http,
        running_worker(settings),
    ):
        yield http


class Sender:
    """Posts batches of fresh logs until stopped; remembers every message it got a 2xx for."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.acknowledged: list[str] = []
        self.stopping = asyncio.Event()

    async def past(self, n: int) -> bool:
        return len(self.acknowledged) > n

    async def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            batch = [make_log(device_id="test-live", message=f"live {n}.{i}") for i in range(20)]
            answer = await self.http.post("/api/logs/batch", json={"logs": batch})
            if answer.status_code == 200:
                self.acknowledged += [log["message"] for log in batch]
            n += 1
            await asyncio.sleep(0)


def read_archive(directory: Path) -> list[dict[str, Any]]:
    """Every archived log, after checking each file against the manifest."""
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["version"] == 1
    found = []
    for entry in manifest["files"]:
        data = (directory / entry["name"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        lines = [json.loads(line) for line in gzip.decompress(data).splitlines()]
        assert len(lines) == entry["rows"]
        assert {line["created_at"][:10] for line in lines} == {entry["day"]}
        found += lines
    return found


async def assert_counts_match_the_logs(under_test: StoreUnderTest) -> None:
    total = (await rows(under_test, "SELECT count(*) FROM logs"))[0][0]
    assert (await under_test.store.counts()).total == total
    span = whole_buckets(NOW - timedelta(days=60), NOW + timedelta(days=1), 3600)
    rollups = RollupStore(under_test.store.reads)
    everything = condition_of(parse(""))
    scanned = await rollups.scan(everything, span, group_by="device")
    assert await rollups.count(everything, span, group_by="device", by_device=True) == scanned
    by_level = await rollups.scan(everything, span, group_by="level")
    assert await rollups.count(everything, span, group_by="level", by_device=False) == by_level
    devices = {row[0] for row in await rows(under_test, "SELECT device_id FROM devices")}
    assert devices == {row[0] for row in await rows(under_test, "SELECT device_id FROM logs")}


async def prepare_partitions(under_test: StoreUnderTest) -> None:
    """Day partitions for the seeded days (PostgreSQL), as the worker would have made them."""
    if under_test.kind != "postgresql":
        return
    assert under_test.settings.database_url is not None
    writer = BulkWriter(under_test.settings.database_url, max_connections=1)
    await writer.open()
    for age in AGES_DAYS:
        await writer.maintain(ahead=0, today=NOW - timedelta(days=age))
    await writer.close()


async def partitions(under_test: StoreUnderTest) -> set[str]:
    found = await rows(
        under_test,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'logs'::regclass",
    )
    return {name for (name,) in found}


async def test_a_pass_removes_what_the_rules_say_archived_while_ingest_runs(
    store_under_test: StoreUnderTest,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small batches and units, so that a few hundred logs take many of each.
    monkeypatch.setattr(batches, "BATCH_ROWS", 25)
    monkeypatch.setattr(batches, "UNIT_ROWS", 60)
    under_test = store_under_test
    await prepare_partitions(under_test)
    seeded = seed_logs()
    await under_test.add(seeded)
    archive_dir = tmp_path / "archive"
    settings = under_test.settings.model_copy(
        update={"retention_days": 30, "archive_dir": archive_dir}
    )
    retention = Retention(under_test.store.engine, settings)
    async with ingest_server(under_test, request, tmp_path) as http:
        await add_rules(retention)
        preview = await retention.preview()
        ids_before = {row[0] for row in await rows(under_test, "SELECT id FROM logs")}
        sender = Sender(http)
        sending = asyncio.create_task(sender.run())
        await wait_for(lambda: sender.past(100), what="logs acknowledged")
        report = await apply_when_free(retention)
        await wait_for(lambda: sender.past(300), what="more logs acknowledged")
        sender.stopping.set()
        await sending

        async def all_stored() -> bool:
            found = await rows(
                under_test, "SELECT count(*) FROM logs WHERE device_id = 'test-live'"
            )
            return bool(found[0][0] == len(sender.acknowledged))

        await wait_for(all_stored, what="every acknowledged log stored")

    remaining = await rows(under_test, "SELECT message FROM logs")
    expected = {record.message for record in seeded if kept(record)} | set(sender.acknowledged)
    assert sorted(message for (message,) in remaining) == sorted(expected)

    ids_after = {row[0] for row in await rows(under_test, "SELECT id FROM logs")}
    archived = read_archive(archive_dir)
    assert sorted(line["id"] for line in archived) == sorted(ids_before - ids_after)
    gone = {record.message: record for record in seeded if not kept(record)}
    for line in archived:
        record = gone.pop(line["message"])
        assert (line["device_id"], line["log_level"]) == (record.device_id, record.level)
        assert line["created_at"] == record.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert line["log_data"] == record.log_data
    assert not gone

    assert [(tally.rule, tally.rows) for tally in report.tallies] == [
        (tally.rule, tally.rows) for tally in preview.tallies
    ]
    assert [tally.days for tally in report.tallies] == [tally.days for tally in preview.tallies]
    assert report.rows == len(seeded) - len([record for record in seeded if kept(record)])
    await assert_counts_match_the_logs(under_test)
    # The word index (FTS5 on SQLite, kept by triggers) finds only what remains.
    found = await under_test.messages("seeded")
    assert sorted(found) == sorted(record.message for record in seeded if kept(record))

    if under_test.kind == "postgresql":
        # The worker keeps a partition for the day before each day, so 42 days ago has one.
        old_days = {partition_name((NOW - timedelta(days=age)).date()) for age in (40, 41, 42)}
        assert set(report.partitions) == old_days == set(preview.partitions)
        assert not old_days & await partitions(under_test)


async def test_without_an_archive_the_settings_retention_is_the_default_rule(
    store_under_test: StoreUnderTest,
) -> None:
    await prepare_partitions(store_under_test)
    seeded = seed_logs()
    await store_under_test.add(seeded)
    settings = store_under_test.settings.model_copy(update={"retention_days": 10})
    retention = Retention(store_under_test.store.engine, settings)
    report = await retention.apply()
    remaining = await rows(store_under_test, "SELECT count(*) FROM logs")
    assert remaining[0][0] == len([record for record in seeded if NOW - record.ts < timedelta(10)])
    assert [(tally.rule.days, tally.rule.id) for tally in report.tallies] == [(10, None)]
    assert (await retention.apply()).rows == 0
    await assert_counts_match_the_logs(store_under_test)


async def test_with_no_rule_nothing_goes(store_under_test: StoreUnderTest) -> None:
    await store_under_test.add(seed_logs())
    report = await Retention(store_under_test.store.engine, store_under_test.settings).apply()
    assert report.tallies == []
    assert report.rows == 0
    assert (await rows(store_under_test, "SELECT count(*) FROM logs"))[0][0] == len(seed_logs())


async def test_an_archive_that_cannot_be_written_keeps_every_log(
    store_under_test: StoreUnderTest, tmp_path: Path
) -> None:
    await prepare_partitions(store_under_test)
    await store_under_test.add(seed_logs())
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the archive directory should be")
    settings = store_under_test.settings.model_copy(
        update={"retention_days": 30, "archive_dir": blocked}
    )
    with pytest.raises(ArchiveFailed):
        await Retention(store_under_test.store.engine, settings).apply()
    assert (await rows(store_under_test, "SELECT count(*) FROM logs"))[0][0] == len(seed_logs())


async def test_a_second_pass_over_a_day_adds_a_file(
    store_under_test: StoreUnderTest, tmp_path: Path
) -> None:
    archive_dir = tmp_path / "archive"
    configured = store_under_test.settings.model_copy(
        update={"retention_days": 30, "archive_dir": archive_dir}
    )
    retention = Retention(store_under_test.store.engine, configured)
    old = [record for record in seed_logs() if NOW - record.ts > timedelta(days=40, hours=1)]
    for half in (old[: len(old) // 2], old[len(old) // 2 :]):
        await store_under_test.add(half)
        await retention.apply()
    day = (NOW - timedelta(days=41)).date().isoformat()
    names = [
        entry["name"] for entry in json.loads((archive_dir / "manifest.json").read_text())["files"]
    ]
    assert names == [f"{day}.ndjson.gz", f"{day}.2.ndjson.gz"]
    assert len(read_archive(archive_dir)) == len(old)
