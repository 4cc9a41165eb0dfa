"""LogStore: insert batches of records, read them back newest first, count them."""

import math
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

from fleetlog.errors import QueryTimeout
from fleetlog.search import sql
from fleetlog.search.plan import TEXT, Device, Node, holds
from fleetlog.store.engine import Deadline
from fleetlog.store.replicas import MAX_LAG, ReadEngines
from fleetlog.store.tables import devices, level_counts, logs
from fleetlog.store.words import walk_preferred

RECENT_DEVICES = 10
FIRST_CHUNK = 16
CHUNK_GROWTH = 8
# A row's size as answered, beyond its message, log_data and device id: field names, times.
ROW_OVERHEAD_BYTES = 160
QUERY_CANCELED = "57014"
# For the rest of the transaction: the timeout, and a plan for these very values. A plan
# cached for one word is wrong for the next (a rare word's GIN look-up against a common word's
# ordered walk), and a generic plan, cached after five runs of a prepared statement, knows no
# word at all.
BOUND_TRANSACTION = text(
    "SELECT set_config('statement_timeout', :milliseconds, true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)

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
    """A page of logs in their order, and whether more may follow them."""

    logs: list[StoredLog]
    more: bool


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time fleetlog stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def byte_length(dialect: str, value: ColumnElement[Any]) -> ColumnElement[int]:
    if dialect == "sqlite":
        return func.length(cast(value, LargeBinary))
    return func.octet_length(value)


def beyond(position: Position | None, *, ascending: bool) -> ColumnElement[bool]:
    """The logs after `position` in their order: by (time, id), newest first unless
    `ascending` (all of them without a position)."""
    if position is None:
        return true()
    created_at, log_id = logs.c.created_at, logs.c.id
    if ascending:
        return (created_at >= position.created_at) & (
            (created_at > position.created_at) | (log_id > position.id)
        )
    return (created_at <= position.created_at) & (
        (created_at < position.created_at) | (log_id < position.id)
    )


def row_size(dialect: str) -> ColumnElement[int]:
    """A log's estimated size as answered: ROW_OVERHEAD_BYTES and the bytes of its text."""
    size = ROW_OVERHEAD_BYTES + func.length(logs.c.device_id)
    size += byte_length(dialect, logs.c.message)
    return size + byte_length(dialect, cast(logs.c.log_data, Text))


def in_order(created_at: Any, log_id: Any, *, ascending: bool) -> tuple[Any, Any]:
    if ascending:
        return created_at.asc(), log_id.asc()
    return created_at.desc(), log_id.desc()


def sized_first(
    where: ColumnElement[bool], *, rows: int, dialect: str, ascending: bool
) -> Subquery:
    """The first `rows` logs `where` holds in their order: their keys, `size`, and the
    `running` sum of the sizes. Only they are sized and summed (a window over all the logs
    `where` holds would read every one of them)."""
    picked = (
        select(logs.c.id, logs.c.created_at, row_size(dialect).label("size"))
        .where(where)
        .order_by(*in_order(logs.c.created_at, logs.c.id, ascending=ascending))
        .limit(rows)
        .subquery()
    )
    order = in_order(picked.c.created_at, picked.c.id, ascending=ascending)
    running = func.sum(picked.c.size).over(order_by=order, rows=(None, 0))
    return select(picked, running.label("running")).subquery()


def within(sized: Subquery, *, max_bytes: int | None, first: bool) -> ColumnElement[bool]:
    """Whether a sized log ends within `max_bytes`; the `first` log of a page always does."""
    if max_bytes is None:
        return true()
    fits = sized.c.running <= max_bytes
    if first:
        fits |= sized.c.running == sized.c.size
    return fits


@dataclass(frozen=True, slots=True)
class Selection:
    """Which logs a page holds, and in which order: those `plan` finds within [since, until);
    `timeout` bounds each read in seconds (None: unbounded)."""

    plan: Node
    since: datetime | None = None
    until: datetime | None = None
    ascending: bool = False
    timeout: float | None = None

    async def where(self, conn: AsyncConnection, after: Position | None) -> ColumnElement[bool]:
        """Its logs after `after`, on the store `conn` is connected to."""
        dialect = conn.dialect.name
        walk = dialect == "sqlite" and holds(self.plan, TEXT)
        walk = walk and await walk_preferred(conn, self.plan)
        where = sql.where(self.plan, dialect=dialect, table=logs, walk=walk)
        where &= beyond(after, ascending=self.ascending)
        if self.since is not None:
            where &= logs.c.created_at >= self.since
        if self.until is not None:
            where &= logs.c.created_at < self.until
        return where


def of_device(device_id: str) -> Selection:
    """A device's logs, newest first."""
    return Selection(Device(device_id))


def chunk_reader(
    selection: Selection,
    *,
    after: Position | None,
    rows: int,
    max_bytes: int | None,
    first: bool,
) -> ChunkRead:
    """A read of the next `rows` logs of `selection` after `after`, each with its `size` and
    whether it `fits` within `max_bytes`. Those that do not come without their text: it stays
    in the database, and they only say that more logs remain."""
    ascending = selection.ascending

    async def read(conn: AsyncConnection) -> Sequence[Any]:
        dialect = conn.dialect.name
        where = await selection.where(conn, after)
        sized = sized_first(where, rows=rows, dialect=dialect, ascending=ascending)
        fits = within(sized, max_bytes=max_bytes, first=first)
        columns = [logs.c[name] for name in StoredLog._fields if name != "log_data"]
        chosen = (logs.c.id == sized.c.id) & (logs.c.created_at == sized.c.created_at) & fits
        query = (
            select(*columns, cast(logs.c.log_data, Text).label("log_data"))
            .add_columns(sized.c.size, fits.label("fits"))
            .select_from(sized.outerjoin(logs, chosen))
            .order_by(*in_order(sized.c.created_at, sized.c.id, ascending=ascending))
        )
        async with bounded(conn, selection.timeout):
            return (await conn.execute(query)).all()

    return read


@asynccontextmanager
async def bounded(conn: AsyncConnection, seconds: float | None) -> AsyncIterator[None]:
    """Cancel the statements run within, in the database, once they ran `seconds`:
    PostgreSQL's statement_timeout for the transaction (planned for their own values, too),
    SQLite's progress handler."""
    if seconds is None:
        yield
        return
    deadline: Deadline | None = None
    if conn.dialect.name == "postgresql":
        milliseconds = str(math.ceil(seconds * 1000))
        await conn.execute(BOUND_TRANSACTION, {"milliseconds": milliseconds})
    else:
        deadline = (await conn.get_raw_connection()).info["deadline"]
        deadline.at = time.monotonic() + seconds
    try:
        yield
    except DBAPIError as exc:
        if not cancelled(exc):
            raise
        raise QueryTimeout(
            f"the query ran past {seconds:g} s: narrow it, with since and until, "
            "a device or a level, or rarer words",
            detail=[{"field": "q", "rule": "query_timeout", "timeout_s": seconds}],
        ) from None
    finally:
        if deadline is not None:
            deadline.at = math.inf


def cancelled(exc: DBAPIError) -> bool:
    """Whether the database cancelled the statement for running too long."""
    if isinstance(exc.orig, sqlite3.OperationalError):
        return "interrupted" in str(exc.orig)
    return getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED


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

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        replicas: Sequence[AsyncEngine] = (),
        max_replica_lag: timedelta = MAX_LAG,
    ) -> None:
        self.engine = engine
        self.reads = ReadEngines(engine, replicas, max_lag=max_replica_lag)

    async def latest(
        self,
        device_id: str,
        *,
        limit: int,
        before: Position | None = None,
        max_bytes: int | None = None,
        replicas: bool = True,
    ) -> Newest:
        """The device's newest logs by event time, newest first, after `before` if given."""
        return await self.page(
            of_device(device_id), limit=limit, after=before, max_bytes=max_bytes, replicas=replicas
        )

    async def page(
        self,
        selection: Selection,
        *,
        limit: int,
        after: Position | None = None,
        max_bytes: int | None = None,
        replicas: bool = True,
    ) -> Newest:
        """The first `limit` logs of `selection` in its order, after `after` if given.

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
                selection,
                after=after,
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
            after, chunk = rows[-1].position, chunk * CHUNK_GROWTH

    async def counts(self) -> Counts:
        """Total logs, logs by level, and the devices heard from most recently: from the
        rollups (migration 0005), never a count over the logs."""
        count = level_counts.c["count"]
        by_level_query = select(level_counts.c.log_level, func.sum(count))
        by_level_query = by_level_query.group_by(level_counts.c.log_level)
        recent_query = (
            select(devices.c.device_id).order_by(devices.c.last_seen.desc()).limit(RECENT_DEVICES)
        )

        async def read(conn: AsyncConnection) -> Counts:
            rows = (await conn.execute(by_level_query)).all()
            by_level = {level: int(total) for level, total in rows}
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
