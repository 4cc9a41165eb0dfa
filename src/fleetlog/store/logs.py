"""LogStore: insert batches of records, read them back newest first, count them."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Row,
    Subquery,
    Text,
    cast,
    func,
    select,
    text,
    true,
)
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.store.replicas import ReadEngines
from fleetlog.store.tables import logs

RECENT_DEVICES = 10
FIRST_CHUNK = 16
CHUNK_GROWTH = 8
# A row's size as answered, beyond its message, log_data and device id: field names, times.
ROW_OVERHEAD_BYTES = 160

ChunkRead = Callable[[AsyncConnection], Awaitable[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    by_level: dict[str, int]
    recent_devices: list[str]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page of a device's logs ended, in their order: newest first, by (time, id)."""

    created_at: datetime
    id: int


class StoredLog(NamedTuple):
    """A stored log as read back; `log_data` is its JSON text, as the store holds it."""

    id: int
    device_id: str
    log_level: str
    message: str
    log_data: str
    created_at: datetime
    received_at: datetime

    @property
    def position(self) -> Position:
        return Position(self.created_at, self.id)


class Newest(NamedTuple):
    """A device's logs, newest first, and whether older ones may follow them."""

    logs: list[StoredLog]
    more: bool


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time fleetlog stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def byte_length(dialect: str, value: ColumnElement[Any]) -> ColumnElement[int]:
    if dialect == "sqlite":
        return func.length(cast(value, LargeBinary))
    return func.octet_length(value)


def older_than(device_id: str, before: Position | None) -> ColumnElement[bool]:
    """The device's logs after `before` in their order (all of them without it)."""
    where = logs.c.device_id == device_id
    if before is not None:
        where &= logs.c.created_at <= before.created_at
        where &= (logs.c.created_at < before.created_at) | (logs.c.id < before.id)
    return where


def row_size(dialect: str) -> ColumnElement[int]:
    """A log's estimated size as answered: ROW_OVERHEAD_BYTES and the bytes of its text."""
    size = ROW_OVERHEAD_BYTES + func.length(logs.c.device_id)
    size += byte_length(dialect, logs.c.message)
    return size + byte_length(dialect, cast(logs.c.log_data, Text))


def sized_newest(where: ColumnElement[bool], *, rows: int, dialect: str) -> Subquery:
    """The `rows` newest logs `where` holds: their keys, `size`, and the `running` sum of the
    sizes, newest first. Only they are sized and summed (a window over the device's logs
    would read every log it has)."""
    picked = (
        select(logs.c.id, logs.c.created_at, row_size(dialect).label("size"))
        .where(where)
        .order_by(logs.c.created_at.desc(), logs.c.id.desc())
        .limit(rows)
        .subquery()
    )
    newest_first = (picked.c.created_at.desc(), picked.c.id.desc())
    running = func.sum(picked.c.size).over(order_by=newest_first, rows=(None, 0))
    return select(picked, running.label("running")).subquery()


def within(sized: Subquery, *, max_bytes: int | None, first: bool) -> ColumnElement[bool]:
    """Whether a sized log ends within `max_bytes`; the `first` log of a page always does."""
    if max_bytes is None:
        return true()
    fits = sized.c.running <= max_bytes
    if first:
        fits |= sized.c.running == sized.c.size
    return fits


def chunk_reader(
    device_id: str, *, before: Position | None, rows: int, max_bytes: int | None, first: bool
) -> ChunkRead:
    """A read of the device's next `rows` logs after `before`, newest first, each with its
    `size` and whether it `fits` within `max_bytes`. Those that do not come without their
    text: it stays in the database, and they only say that older logs remain."""
    where = older_than(device_id, before)

    async def read(conn: AsyncConnection) -> Sequence[Any]:
        sized = sized_newest(where, rows=rows, dialect=conn.dialect.name)
        fits = within(sized, max_bytes=max_bytes, first=first)
        columns = [logs.c[name] for name in StoredLog._fields if name != "log_data"]
        chosen = (logs.c.id == sized.c.id) & (logs.c.created_at == sized.c.created_at)
        chosen &= (logs.c.device_id == device_id) & fits
        query = (
            select(*columns, cast(logs.c.log_data, Text).label("log_data"))
            .add_columns(sized.c.size, fits.label("fits"))
            .select_from(sized.outerjoin(logs, chosen))
            .order_by(sized.c.created_at.desc(), sized.c.id.desc())
        )
        return (await conn.execute(query)).all()

    return read


def stored_log(row: Row[Any]) -> StoredLog:
    """The row without its size, its times in UTC."""
    return StoredLog(
        id=row.id,
        device_id=row.device_id,
        log_level=row.log_level,
        message=row.message,
        log_data=row.log_data,
        created_at=as_utc(row.created_at),
        received_at=as_utc(row.received_at),
    )


class LogStore:
    """The one query layer over the `logs` table, for SQLite and PostgreSQL alike."""

    def __init__(self, engine: AsyncEngine, *, replicas: Sequence[AsyncEngine] = ()) -> None:
        self.engine = engine
        self.reads = ReadEngines(engine, replicas)

    async def latest(
        self,
        device_id: str,
        *,
        limit: int,
        before: Position | None = None,
        max_bytes: int | None = None,
        replicas: bool = True,
    ) -> Newest:
        """The device's newest logs by event time, newest first, after `before` if given.

        With `max_bytes`, they stop before the first whose estimated size (ROW_OVERHEAD_BYTES
        and the bytes of its text) would pass the bound, but hold one log at least: the
        database sums the sizes, so no log past the bound leaves it. They are read in chunks
        growing from FIRST_CHUNK, so the database sizes few more logs than are wanted.
        `replicas`: see ReadEngines.
        """
        rows: list[StoredLog] = []
        spent, chunk = 0, FIRST_CHUNK
        while True:
            wanted = min(chunk, limit + 1 - len(rows))
            read = chunk_reader(
                device_id,
                before=before,
                rows=wanted,
                max_bytes=None if max_bytes is None else max_bytes - spent,
                first=not rows,
            )
            got = await self.reads.run(read, replicas=replicas)
            fitting = [row for row in got if row.fits]
            rows += [stored_log(row) for row in fitting]
            spent += sum(row.size for row in fitting)
            # A log that did not fit is a log left: never take a short chunk for the end.
            if len(rows) > limit or len(fitting) < len(got):
                return Newest(rows[:limit], more=True)
            if len(got) < wanted:
                return Newest(rows, more=False)
            before, chunk = rows[-1].position, chunk * CHUNK_GROWTH

    async def counts(self) -> Counts:
        """Total logs, logs by level, and the devices heard from most recently."""
        by_level_query = select(logs.c.log_level, func.count()).group_by(logs.c.log_level)
        last_seen = func.max(logs.c.received_at)
        recent_query = (
            select(logs.c.device_id)
            .group_by(logs.c.device_id)
            .order_by(last_seen.desc())
            .limit(RECENT_DEVICES)
        )

        async def read(conn: AsyncConnection) -> Counts:
            by_level: dict[str, int] = dict((await conn.execute(by_level_query)).all())
            recent = list((await conn.execute(recent_query)).scalars())
            return Counts(total=sum(by_level.values()), by_level=by_level, recent_devices=recent)

        return await self.reads.run(read)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError):
            return False
        return True

    async def close(self) -> None:
        await self.reads.close()
