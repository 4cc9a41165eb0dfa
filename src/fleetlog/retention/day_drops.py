"""Whole day partitions dropped (PostgreSQL): the cheap way out for days every rule let go.

A day goes whole when it ended before the cutoff of the longest-lived rule and a default rule
covers every log. In one transaction: the partition is locked against writes (waiting at most
LOCK_TIMEOUT, else the day waits for the next pass), its logs are tallied per rule and
archived, then it is dropped with its days' rollups. DROP needs a moment's exclusive lock on
`logs` itself; when a long read holds `logs` past LOCK_TIMEOUT, the partition is emptied
(TRUNCATE, which locks only the partition) and dropped by a later pass, so ingest never queues
behind retention for longer than that.
"""

import asyncio
import logging
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Text, cast, delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.metrics import RETENTION_LOGS_DELETED
from fleetlog.retention.archive import Archive, ArchivedFile
from fleetlog.retention.report import Tally
from fleetlog.retention.rules import Rule, governing
from fleetlog.store.engine import connected
from fleetlog.store.logs import Position, as_utc, beyond
from fleetlog.store.partitions import ONE_DAY, day_start, partition_days
from fleetlog.store.tables import level_counts, log_counts, logs

log = logging.getLogger(__name__)

LOCK_TIMEOUT = "1s"
LOCK_NOT_AVAILABLE = "55P03"
ARCHIVE_CHUNK = 5_000
ROW = (
    logs.c.id,
    logs.c.device_id,
    logs.c.log_level,
    logs.c.message,
    cast(logs.c.log_data, Text).label("log_data"),
    logs.c.created_at,
    logs.c.received_at,
)


def lock_refused(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


async def droppable(engine: AsyncEngine, before: datetime) -> dict[date, str]:
    """The day partitions that end by `before`."""
    async with connected(engine) as conn:
        raw = await conn.get_raw_connection()
        days = await partition_days(raw.driver_connection)
    return {day: name for day, name in days.items() if day_start(day + ONE_DAY) <= before}


class DayDropper:
    def __init__(self, engine: AsyncEngine, *, archive: Archive | None) -> None:
        self.engine = engine
        self.archive = archive
        self.archived: list[ArchivedFile] = []

    async def drop(self, day: date, name: str, tallies: Sequence[Tally]) -> bool:
        """Drop (or empty) one day's partition; False when its lock was not had in time."""
        start, end = day_start(day), day_start(day + ONE_DAY)
        try:
            async with connected(self.engine, transaction=True) as conn:
                await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                await conn.execute(text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
                rows = await self._tally(conn, name, tallies)
                await self._archive(conn, day, start, end)
                await self._remove(conn, name)
                for table in (log_counts, level_counts):
                    bucket = table.c.bucket
                    await conn.execute(delete(table).where(bucket >= start, bucket < end))
        except DBAPIError as exc:
            if not lock_refused(exc):
                raise
            log.info("retention: %s is in use; it goes in a later pass", name)
            return False
        RETENTION_LOGS_DELETED.labels("partition").inc(rows)
        return True

    async def _tally(self, conn: AsyncConnection, name: str, tallies: Sequence[Tally]) -> int:
        """Count the partition's logs to the rules that govern them."""
        query = text(
            f"SELECT device_id, log_level, count(*), min(created_at), max(created_at) FROM {name} "
            "GROUP BY 1, 2"
        )
        rules = [tally.rule for tally in tallies]
        total = 0
        for device_id, level, count, oldest, newest in await conn.execute(query):
            rule: Rule | None = governing(rules, device_id, level)
            assert rule is not None, "a default rule governs every log of a droppable day"
            day = as_utc(oldest).date().isoformat()
            tallies[rules.index(rule)].add(count, oldest=oldest, newest=newest, days={day})
            total += count
        return total

    async def _archive(
        self, conn: AsyncConnection, day: date, start: datetime, end: datetime
    ) -> None:
        archive = self.archive
        if archive is None:
            return
        file = await asyncio.to_thread(archive.open_day, day)
        try:
            after: Position | None = None
            while True:
                query = (
                    select(*ROW)
                    .where(logs.c.created_at >= start, logs.c.created_at < end)
                    .where(beyond(after, ascending=True))
                    .order_by(logs.c.created_at, logs.c.id)
                    .limit(ARCHIVE_CHUNK)
                )
                rows = (await conn.execute(query)).all()
                if rows:
                    await asyncio.to_thread(archive.write, file, rows)
                    after = Position(rows[-1].created_at, rows[-1].id)
                if len(rows) < ARCHIVE_CHUNK:
                    break
        except BaseException:
            archive.discard([file])
            raise
        if file.rows:
            self.archived += await asyncio.to_thread(archive.publish, [file])
        else:
            archive.discard([file])

    async def _remove(self, conn: AsyncConnection, name: str) -> None:
        try:
            async with conn.begin_nested():
                await conn.execute(text(f"DROP TABLE {name}"))
        except DBAPIError as exc:
            if not lock_refused(exc):
                raise
            log.info("retention: logs is in use; %s is emptied now and dropped later", name)
            await conn.execute(text(f"TRUNCATE {name}"))
