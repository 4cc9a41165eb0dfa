"""LogStore: insert batches of records, read them back newest first, count them."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, LargeBinary, Row, Text, cast, func, select, text
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


def chunk_reader(
    device_id: str, *, before: Position | None, rows: int, max_bytes: int | None, first: bool
) -> ChunkRead:
    """A read of the device's next `rows` logs after `before`, each with its estimated `size`
    and how many were `picked`; those that end past `max_bytes` stay in the database, bar
    the `first` log of a page, always read.

    The `rows` newest are picked first, and only they are sized and summed (a window over the
    device's logs would read every log it has).
    """
    where = logs.c.device_id == device_id
    if before is not None:
        where &= logs.c.created_at <= before.created_at
        where &= (logs.c.created_at < before.created_at) | (logs.c.id < before.id)

    async def read(conn: AsyncConnection) -> Sequence[Any]:
        log_data = cast(logs.c.log_data, Text)
        size = ROW_OVERHEAD_BYTES + func.length(logs.c.device_id)
        size += byte_length(conn.dialect.name, logs.c.message)
        size += byte_length(conn.dialect.name, log_data)
        picked = (
            select(logs.c.id, logs.c.created_at, size.label("size"))
            .where(where)
            .order_by(logs.c.created_at.desc(), logs.c.id.desc())
            .limit(rows)
            .subquery()
        )
        newest_first = (picked.c.created_at.desc(), picked.c.id.desc())
        running = func.sum(picked.c.size).over(order_by=newest_first, rows=(None, 0))
        sized = select(
            picked, running.label("running"), func.count().over().label("picked")
        ).subquery()
        # Only the sizes go through the window; the rows themselves are read once chosen.
        columns = [logs.c[name] for name in StoredLog._fields if name != "log_data"]
        query = (
            select(*columns, log_data.label("log_data"), sized.c.size, sized.c.picked)
            .join(sized, (logs.c.id == sized.c.id) & (logs.c.created_at == sized.c.created_at))
            .where(logs.c.device_id == device_id)
            .order_by(sized.c.created_at.desc(), sized.c.id.desc())
        )
        if max_bytes is not None:
            fits = sized.c.running <= max_bytes
            if first:
                fits |= sized.c.running == sized.c.size
            query = query.where(fits)
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
            rows += [stored_log(row) for row in got]
            spent += sum(row.size for row in got)
            picked = got[0].picked if got else 0
            if len(rows) > limit or picked > len(got):
                return Newest(rows[:limit], more=True)
            if picked < wanted:
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
