"""Batched deletes: the logs a rule has let go, removed a bounded batch per transaction.

The due logs of a rule are read in (created_at, id) order, BATCH_ROWS at a time (the indexes
that lead with the level or device, or with created_at, serve it), into units of at most
UNIT_ROWS logs. A unit is first written to the archive, when there is one, and then deleted by
its keys, BATCH_ROWS per transaction, with the rollups of those very logs taken off in the
same transaction (the FTS index of SQLite follows by its triggers). Only logs of the unit are
deleted: one that arrives meanwhile, even due already, waits for the next pass, so nothing
leaves unarchived.
"""

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Text, and_, bindparam, cast, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.metrics import RETENTION_LOGS_DELETED
from fleetlog.retention.archive import Archive, ArchivedFile, DayFile
from fleetlog.retention.locks import write_turn
from fleetlog.retention.report import Tally
from fleetlog.store.engine import connected
from fleetlog.store.logs import Position, as_utc, beyond
from fleetlog.store.tables import level_counts, log_counts, logs

BATCH_ROWS = 5_000
UNIT_ROWS = 100_000
KEYS = (logs.c.id, logs.c.device_id, logs.c.log_level, logs.c.created_at)
WHOLE = (*KEYS, logs.c.message, cast(logs.c.log_data, Text).label("log_data"), logs.c.received_at)


class Key(NamedTuple):
    """What a deleted log's rollups and its batch's delete need of it."""

    id: int
    device_id: str
    log_level: str
    created_at: datetime


def minute(moment: datetime) -> datetime:
    return as_utc(moment).replace(second=0, microsecond=0)


def days_of(rows: Sequence[Key]) -> set[str]:
    return {as_utc(row.created_at).date().isoformat() for row in rows}


async def take_off_counts(conn: AsyncConnection, rows: Sequence[Key]) -> None:
    """Subtract the logs `rows` from the rollups, and drop the counts that reach zero."""
    by_device = Counter((row.device_id, minute(row.created_at), row.log_level) for row in rows)
    by_level = Counter((minute(row.created_at), row.log_level) for row in rows)
    await conn.execute(
        update(log_counts)
        .where(
            log_counts.c.device_id == bindparam("d"),
            log_counts.c.bucket == bindparam("b"),
            log_counts.c.log_level == bindparam("l"),
        )
        .values(count=log_counts.c["count"] - bindparam("n")),
        [{"d": d, "b": b, "l": lvl, "n": n} for (d, b, lvl), n in by_device.items()],
    )
    await conn.execute(
        update(level_counts)
        .where(level_counts.c.bucket == bindparam("b"), level_counts.c.log_level == bindparam("l"))
        .values(count=level_counts.c["count"] - bindparam("n")),
        [{"b": b, "l": lvl, "n": n} for (b, lvl), n in by_level.items()],
    )
    first, last = min(by_level)[0], max(by_level)[0]
    for table in (log_counts, level_counts):
        spent = and_(table.c.bucket.between(first, last), table.c["count"] <= 0)
        await conn.execute(delete(table).where(spent))


class BatchDeleter:
    """Deletes the due logs of one rule after another, archiving each unit first."""

    def __init__(self, engine: AsyncEngine, *, sqlite_path: Path, archive: Archive | None) -> None:
        self.engine = engine
        self.sqlite_path = sqlite_path
        self.archive = archive
        self.archived: list[ArchivedFile] = []

    async def sweep(self, tally: Tally, due: Any) -> None:
        """Remove every log `due` selects (as of the reads), tallied in `tally`."""
        unit: list[Key] = []
        files: dict[date, DayFile] = {}
        try:
            await self._walk(tally, due, unit, files)
        except BaseException:
            if self.archive is not None:
                self.archive.discard(list(files.values()))
            raise

    async def _walk(
        self, tally: Tally, due: Any, unit: list[Key], files: dict[date, DayFile]
    ) -> None:
        columns = WHOLE if self.archive is not None else KEYS
        after: Position | None = None
        while True:
            query = (
                select(*columns)
                .where(due, beyond(after, ascending=True))
                .order_by(logs.c.created_at, logs.c.id)
                .limit(BATCH_ROWS)
            )
            async with connected(self.engine) as conn:
                rows = (await conn.execute(query)).all()
            if rows:
                await self._archive(files, rows)
                unit += [Key(*row[: len(KEYS)]) for row in rows]
                after = Position(rows[-1].created_at, rows[-1].id)
            if len(unit) >= UNIT_ROWS or (unit and len(rows) < BATCH_ROWS):
                await self._publish(list(files.values()))
                await self._delete(tally, unit)
                unit.clear()
                files.clear()
            if len(rows) < BATCH_ROWS:
                return

    async def _archive(self, files: dict[date, DayFile], rows: Sequence[Any]) -> None:
        """Append the rows to their days' files, opened as their days come."""
        archive = self.archive
        if archive is None:
            return
        by_day: dict[date, list[Any]] = {}
        for row in rows:
            by_day.setdefault(as_utc(row.created_at).date(), []).append(row)
        for day, of_day in by_day.items():
            if day not in files:
                files[day] = await asyncio.to_thread(archive.open_day, day)
            await asyncio.to_thread(archive.write, files[day], of_day)

    async def _publish(self, files: list[DayFile]) -> None:
        if self.archive is not None and files:
            self.archived += await asyncio.to_thread(self.archive.publish, files)

    async def _delete(self, tally: Tally, unit: list[Key]) -> None:
        for start in range(0, len(unit), BATCH_ROWS):
            batch = unit[start : start + BATCH_ROWS]
            async with write_turn(self.engine, self.sqlite_path) as conn:
                await take_off_counts(conn, batch)
                await conn.execute(delete(logs).where(self._keys_of(conn, batch)))
            RETENTION_LOGS_DELETED.labels("batch").inc(len(batch))
            tally.add(
                len(batch),
                oldest=batch[0].created_at,
                newest=batch[-1].created_at,
                days=days_of(batch),
            )

    @staticmethod
    def _keys_of(conn: AsyncConnection, batch: Sequence[Key]) -> Any:
        """The batch's rows: by rowid on SQLite; by (created_at, id) on PostgreSQL, so that
        each key is looked up in its day's partition only."""
        if conn.dialect.name == "sqlite":
            return logs.c.id.in_([row.id for row in batch])
        return tuple_(logs.c.created_at, logs.c.id).in_([(row.created_at, row.id) for row in batch])
