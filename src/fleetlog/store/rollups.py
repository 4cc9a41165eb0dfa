"""Counts of logs over time, read from the rollups (migration 0005) or by scanning the logs.

A bucket is known by the epoch second it starts at, a multiple of its width: on both stores
the start of a log's minute in epoch seconds, rounded down to the width by the same integer
arithmetic, so a bucket holds the same logs whichever store, and whichever path, counts it.
The rollups count whole minutes, so they answer exactly only spans that start and end on
minutes (`Span`); the conditions they are read with must name only the device and the level.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Table,
    case,
    cast,
    extract,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetlog.records import LogLevel
from fleetlog.store.logs import as_utc, bounded
from fleetlog.store.replicas import ReadEngines
from fleetlog.store.tables import devices, level_counts, log_counts, logs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ERRORS = (LogLevel.ERROR, LogLevel.CRITICAL)

GroupBy = Literal["level", "device"]
DeviceSort = Literal["device", "last_seen", "total", "errors", "silent_for"]
# A WHERE clause over a table's `device_id` and `log_level`, for the store's dialect.
Condition = Callable[[str, Table], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class Span:
    """[since, until) in buckets of `width` seconds; the rollups answer it when both ends
    fall on minutes."""

    since: datetime
    until: datetime
    width: int

    @property
    def on_minutes(self) -> bool:
        return all(moment.second == moment.microsecond == 0 for moment in (self.since, self.until))


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    key: str | None
    count: int


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_id: str
    first_seen: datetime
    last_seen: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class DevicePage:
    """Devices in the order asked for; `more` when others follow them."""

    devices: list[DeviceRow]
    more: bool


def epoch_seconds(dialect: str, moment: Any) -> ColumnElement[int]:
    """The epoch second a stored time's minute starts at (the minute, then its seconds)."""
    if dialect == "postgresql":
        minute = func.date_trunc("minute", func.timezone("UTC", moment))
        return cast(extract("epoch", minute), BigInteger)
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff': the first 16 characters are the minute.
    return cast(func.strftime("%s", func.substr(moment, 1, 16)), Integer)


def bucket_start(dialect: str, moment: Any, width: int) -> ColumnElement[int]:
    """The epoch second of the bucket of `width` seconds a stored time falls in; the modulo of
    both stores truncates, so it is made a floor for times before 1970 too."""
    second = epoch_seconds(dialect, moment)
    width_sql: ColumnElement[int] = literal_column(str(int(width)))
    return second - (second % width_sql + width_sql) % width_sql


def key_column(table: Table, group_by: GroupBy | None) -> ColumnElement[Any] | None:
    if group_by is None:
        return None
    return table.c.device_id if group_by == "device" else table.c.log_level


def bucketed(
    table: Table, moment: Any, *, dialect: str, span: Span, group_by: GroupBy | None, total: Any
) -> Select[Any]:
    """`total` per bucket (and key) of `table`'s rows, by the time `moment`, in order."""
    start = bucket_start(dialect, moment, span.width).label("start")
    key = key_column(table, group_by)
    columns = [start] if key is None else [start, key.label("key")]
    grouped: list[ColumnElement[Any]] = [literal_column(column.name) for column in columns]
    query = select(*columns, total.label("count")).where(moment >= span.since, moment < span.until)
    return query.group_by(*grouped).order_by(*grouped)


def buckets_of(rows: Sequence[Any], *, keyed: bool) -> list[Bucket]:
    """The rows as buckets; the keys of a bucket share its start (a day at 1m is 7,200 rows)."""
    starts: dict[int, datetime] = {}
    found = []
    for row in rows:
        second = row[0]
        start = starts.get(second)
        if start is None:
            start = starts[second] = EPOCH + timedelta(seconds=second)
        found.append(Bucket(start, row[1] if keyed else None, row[-1]))
    return found


class RollupStore:
    """Counts over time and the fleet's devices without reading the logs (except `scan`, for
    the conditions the rollups cannot answer)."""

    def __init__(self, reads: ReadEngines) -> None:
        self.reads = reads

    async def count(
        self,
        condition: Condition,
        span: Span,
        *,
        group_by: GroupBy | None,
        by_device: bool,
        max_seconds: float | None = None,
        replicas: bool = True,
    ) -> list[Bucket]:
        """Counts per bucket from the rollups, for a span on minutes. `by_device`: the
        condition names devices, so the table by device is read; otherwise the one by level
        (far smaller), unless the counts are grouped by device."""
        if not span.on_minutes:
            raise ValueError("the rollups count whole minutes only")
        table = log_counts if by_device or group_by == "device" else level_counts

        async def read(conn: AsyncConnection) -> list[Bucket]:
            dialect = conn.dialect.name
            query = bucketed(
                table,
                table.c.bucket,
                dialect=dialect,
                span=span,
                group_by=group_by,
                total=cast(func.sum(table.c["count"]), BigInteger),
            ).where(condition(dialect, table))
            async with bounded(conn, max_seconds):
                rows = (await conn.execute(query)).all()
            return buckets_of(rows, keyed=group_by is not None)

        return await self.reads.run(read, replicas=replicas)

    async def scan(
        self,
        condition: Condition,
        span: Span,
        *,
        group_by: GroupBy | None,
        max_seconds: float | None = None,
    ) -> list[Bucket]:
        """Counts per bucket by reading the logs `condition` selects, cancelled past `max_seconds`
        seconds (a 4xx QueryTimeout)."""

        async def read(conn: AsyncConnection) -> list[Bucket]:
            dialect = conn.dialect.name
            query = bucketed(
                logs,
                logs.c.created_at,
                dialect=dialect,
                span=span,
                group_by=group_by,
                total=func.count(),
            ).where(condition(dialect, logs))
            async with bounded(conn, max_seconds):
                rows = (await conn.execute(query)).all()
            return buckets_of(rows, keyed=group_by is not None)

        return await self.reads.run(read)

    async def devices(
        self,
        condition: Condition,
        *,
        since: datetime,
        sort: DeviceSort,
        descending: bool,
        limit: int,
        after: tuple[Any, str] | None = None,
        max_seconds: float | None = None,
    ) -> DevicePage:
        """The devices `condition` selects, with their counts by level from the minute `since`
        falls in on, sorted (ties by device id, ascending), `limit` of them after the
        (sort value, device id) `after`."""
        since = since.replace(second=0, microsecond=0)

        async def read(conn: AsyncConnection) -> DevicePage:
            listed = fleet(condition, conn.dialect.name, since=since)
            column, ascending = sort_column(listed, sort, descending=descending)
            query = select(listed)
            if after is not None:
                query = query.where(past(column, listed.c.device_id, after, ascending=ascending))
            query = query.order_by(column.asc() if ascending else column.desc())
            if column is not listed.c.device_id:
                query = query.order_by(listed.c.device_id)
            async with bounded(conn, max_seconds):
                rows = (await conn.execute(query.limit(limit + 1))).all()
            found = [device_row(row) for row in rows]
            return DevicePage(found[:limit], more=len(found) > limit)

        return await self.reads.run(read)


def fleet(condition: Condition, dialect: str, *, since: datetime) -> Any:
    """Every device `condition` selects, its first and last seen, and per level, in total and
    in errors the logs it sent from `since` on."""
    level = log_counts.c.log_level
    sums = [
        func.sum(case((level == name, log_counts.c["count"]), else_=0)).label(name)
        for name in LogLevel
    ]
    window = (
        select(log_counts.c.device_id, *sums)
        .where(log_counts.c.bucket >= since, condition(dialect, log_counts))
        .group_by(log_counts.c.device_id)
        .subquery()
    )
    counts = {name: func.coalesce(window.c[name], 0) for name in LogLevel}
    return (
        select(
            devices.c.device_id,
            devices.c.first_seen,
            devices.c.last_seen,
            *(count.label(name) for name, count in counts.items()),
            sum(counts.values(), start=literal_column("0")).label("total"),
            (counts[ERRORS[0]] + counts[ERRORS[1]]).label("errors"),
        )
        .select_from(devices.outerjoin(window, window.c.device_id == devices.c.device_id))
        .where(condition(dialect, devices))
        .subquery()
    )


def sort_column(listed: Any, sort: DeviceSort, *, descending: bool) -> tuple[Any, bool]:
    """The column of `sort`, and whether it goes ascending: the longest silent went quiet
    first, so `silent_for` is `last_seen` the other way round."""
    if sort == "silent_for":
        return listed.c.last_seen, descending
    name = "device_id" if sort == "device" else sort
    return listed.c[name], not descending


def past(column: Any, device_id: Any, after: tuple[Any, str], *, ascending: bool) -> Any:
    """The rows after (value, device id) in the order of the column, then the device id
    (ties go by device id, ascending, whichever way the column goes)."""
    value, last_device = after
    if column is device_id:
        return device_id > last_device if ascending else device_id < last_device
    beyond = column > value if ascending else column < value
    return beyond | ((column == value) & (device_id > last_device))


def device_row(row: Any) -> DeviceRow:
    return DeviceRow(
        device_id=row.device_id,
        first_seen=as_utc(row.first_seen),
        last_seen=as_utc(row.last_seen),
        counts={name: int(row._mapping[name]) for name in LogLevel},
    )
