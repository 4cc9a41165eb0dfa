"""Counts over time and the fleet view: parameters → a plan and a span → rollups or a scan.

Counts come in whole buckets: `since` goes back and `until` forward to the interval's
boundaries (epoch multiples of its width, so days start at 00:00 UTC), and a bucket counts
every log of its interval. The ends then fall on minutes, so a query made only of devices and
levels is answered from the per-minute rollups; any other is counted by scanning the logs,
under the query timeout, with the same buckets and the same answer. Empty buckets are left
out. With Redis, the rollups' counts of whole days before today are cached, tagged with the
day's version that the worker bumps after storing a log of that day (see cache.py): a day's
counts are read once until a late log lands in it, and never hide one.

The fleet view lists every device, with its counts from the minute `since` falls in on. Its
cursor is the last device's sort value and id, in the clear: a changed one only moves the page,
and one that is not a cursor of the same sort is refused.
"""

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from fleetlog.cache import QueryCache
from fleetlog.errors import InvalidParameter
from fleetlog.records import EPOCH, MICROSECOND, epoch_us
from fleetlog.search.grammar import parse
from fleetlog.search.plan import Device, Levels, Node, conjoin, uses_only
from fleetlog.search.sql import where
from fleetlog.search.times import time_range
from fleetlog.store.rollups import (
    Bucket,
    Condition,
    DeviceRow,
    DeviceSort,
    GroupBy,
    RollupStore,
    Span,
)

Interval = Literal["1m", "5m", "1h", "1d"]
WIDTHS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
MAX_BUCKETS = 10_000
DAY = timedelta(days=1)
# Counts over at most this long are served from whole days cached in Redis (pipeline only).
MAX_DAYS = timedelta(days=31)
DEFAULT_WINDOW = timedelta(hours=24)
LAST_SECOND = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(seconds=1)


class CountBucket(BaseModel):
    start: datetime = Field(description="The bucket's first instant; it lasts one interval")
    key: str | None = Field(None, description="The level or the device; absent without group_by")
    count: int


class CountAnswer(BaseModel):
    interval: Interval
    group_by: GroupBy | None
    buckets: list[CountBucket] = Field(description="In order of start, then key; none empty")


class DeviceOut(BaseModel):
    device_id: str
    first_seen: datetime = Field(description="When its first log was received")
    last_seen: datetime = Field(description="When its latest log was received")
    silent_for_s: int = Field(description="Seconds since last_seen")
    total: int = Field(description="Logs in the window, by event time")
    counts: dict[str, int] = Field(description="Logs in the window, per level")


class DevicesAnswer(BaseModel):
    data: list[DeviceOut]
    next_cursor: str | None = Field(None, description="The next page; absent on the last")


def invalid(field: str, rule: str, message: str) -> InvalidParameter:
    problem = {"field": field, "rule": rule, "message": message}
    return InvalidParameter(f"{field}: {message}", detail=[problem])


def condition_of(plan: Node) -> Condition:
    def condition(dialect: str, table: Any) -> Any:
        return where(plan, dialect=dialect, table=table)

    return condition


def plan_of(q: str | None, device_prefix: str | None) -> Node:
    """The plan of `q`, within the devices a reader bound to `device_prefix` may see."""
    plan = parse(q)
    return plan if device_prefix is None else conjoin(plan, Device(device_prefix, prefix=True))


def midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def whole_buckets(since: datetime, until: datetime, width: int) -> Span:
    """[since, until) widened to whole buckets of `width` seconds; a 400 naming `interval`
    past MAX_BUCKETS of them."""
    first = epoch_us(since) // 1_000_000 // width * width
    last = min(-(-epoch_us(until) // (width * 1_000_000)) * width, LAST_SECOND // width * width)
    if (last - first) // width > MAX_BUCKETS:
        raise invalid(
            "interval",
            "max_buckets",
            f"since to until holds over {MAX_BUCKETS} buckets of this interval: "
            "take a longer interval or a shorter time range",
        )
    return Span(EPOCH + timedelta(seconds=first), EPOCH + timedelta(seconds=last), width)


def answerable(plan: Node, span: Span) -> bool:
    """Whether the rollups answer exactly: only devices and levels, over whole minutes."""
    return uses_only(plan, (Device, Levels)) and span.on_minutes


@dataclass(frozen=True, slots=True)
class DeviceOrder:
    sort: DeviceSort
    descending: bool

    def cursor(self, row: DeviceRow) -> str:
        value: int | None = {
            "device": None,
            "last_seen": epoch_us(row.last_seen),
            "silent_for": epoch_us(row.last_seen),
            "total": row.total,
            "errors": row.counts["ERROR"] + row.counts["CRITICAL"],
        }[self.sort]
        raw = orjson.dumps([self.sort, self.descending, value, row.device_id])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def after(self, cursor: str) -> tuple[Any, str]:
        """The (sort value, device id) `cursor` ends at; a 400 naming `cursor` otherwise."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            sort, descending, value, device_id = orjson.loads(raw)
        except (ValueError, TypeError, binascii.Error):
            raise self.refused() from None
        same = sort == self.sort and descending is self.descending
        if not same or not isinstance(device_id, str) or "\x00" in device_id:
            raise self.refused()
        # A device id sorts by itself; every other sort by an integer (times in µs) that the
        # stores' bigint holds.
        if (value is not None) if self.sort == "device" else (type(value) is not int):
            raise self.refused()
        if value is not None and not -(2**63) <= value < 2**63:
            raise self.refused()
        if self.sort not in ("last_seen", "silent_for"):
            return value, device_id
        try:
            return EPOCH + value * MICROSECOND, device_id
        except OverflowError:
            raise self.refused() from None

    @staticmethod
    def refused() -> InvalidParameter:
        return invalid("cursor", "cursor_invalid", "must be a next_cursor of this same sort")


@dataclass(frozen=True, slots=True)
class Counted:
    """Counts as answered (CountAnswer), rendered straight to JSON: a day at 1m is 7,200
    buckets, and building a model of each took longer than reading them."""

    interval: Interval
    group_by: GroupBy | None
    buckets: list[Bucket]

    def rendered(self) -> bytes:
        """`{interval, group_by, buckets: [{start, key, count}]}`; without group_by, no key."""
        buckets: list[Any] = self.buckets
        if self.group_by is None:
            buckets = [{"start": each.start, "count": each.count} for each in self.buckets]
        answer = {"interval": self.interval, "group_by": self.group_by, "buckets": buckets}
        return orjson.dumps(answer, option=orjson.OPT_UTC_Z)


def device_out(row: DeviceRow, *, now: datetime) -> DeviceOut:
    return DeviceOut(
        device_id=row.device_id,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        silent_for_s=max(0, int((now - row.last_seen).total_seconds())),
        total=row.total,
        counts=row.counts,
    )


class CountQuery:
    """Counts over time and the fleet view, for the API and the CLI."""

    def __init__(
        self,
        store: RollupStore,
        *,
        query_timeout: timedelta,
        cache: QueryCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.cache = cache
        self.timeout = query_timeout.total_seconds()
        self.clock = clock

    async def count(
        self,
        q: str | None,
        *,
        since: str | None,
        until: str | None,
        interval: Interval,
        group_by: GroupBy | None,
        device_prefix: str | None = None,
    ) -> Counted:
        now = self.clock()
        plan = plan_of(q, device_prefix)
        start, end = time_range(since, until, now=now)
        span = whole_buckets(start or now - DEFAULT_WINDOW, end or now, WIDTHS[interval])
        if self.cache is None or not answerable(plan, span) or span.until - span.since > MAX_DAYS:
            buckets = await self._buckets(plan, span, group_by=group_by)
        else:
            key = "\x00".join((q or "", device_prefix or "\x00", interval, group_by or ""))
            buckets = await self._by_day(key, plan, span, group_by=group_by, now=now)
        return Counted(interval, group_by, buckets)

    async def _buckets(
        self, plan: Node, span: Span, *, group_by: GroupBy | None, replicas: bool = True
    ) -> list[Bucket]:
        condition = condition_of(plan)
        if answerable(plan, span):
            by_device = not uses_only(plan, (Levels,))
            return await self.store.count(
                condition,
                span,
                group_by=group_by,
                by_device=by_device,
                max_seconds=self.timeout,
                replicas=replicas,
            )
        return await self.store.scan(condition, span, group_by=group_by, max_seconds=self.timeout)

    async def _by_day(
        self, key: str, plan: Node, span: Span, *, group_by: GroupBy | None, now: datetime
    ) -> list[Bucket]:
        """The buckets of the days before today from their cached whole days (tagged with the
        day's version, like closed-range search pages), the rest from the rollups."""
        today = midnight(now)
        buckets: list[Bucket] = []
        day = midnight(span.since)
        while day < min(span.until, today):
            whole = await self._day(key, plan, Span(day, day + DAY, span.width), group_by)
            buckets += [each for each in whole if span.since <= each.start < span.until]
            day += DAY
        rest = max(span.since, today)
        if rest < span.until:
            buckets += await self._buckets(
                plan, Span(rest, span.until, span.width), group_by=group_by
            )
        return buckets

    async def _day(self, key: str, plan: Node, day: Span, group_by: GroupBy | None) -> list[Bucket]:
        assert self.cache is not None
        digest = hashlib.blake2b(f"{key}\x00{day.since}".encode(), digest_size=16).hexdigest()
        date = day.since.date().isoformat()
        tag, answer = await self.cache.of_days("counts", digest, [date])
        if answer is not None:
            return [
                Bucket(EPOCH + start * MICROSECOND, bucket_key, count)
                for start, bucket_key, count in orjson.loads(answer)
            ]
        # Kept until the day gets a log: read from the primary, never a lagging replica.
        buckets = await self._buckets(plan, day, group_by=group_by, replicas=False)
        kept = [[epoch_us(each.start), each.key, each.count] for each in buckets]
        await self.cache.keep_of_days("counts", digest, tag=tag, answer=orjson.dumps(kept))
        return buckets

    async def devices(
        self,
        q: str | None,
        *,
        since: str | None,
        order: DeviceOrder,
        limit: int,
        cursor: str | None,
        device_prefix: str | None = None,
    ) -> DevicesAnswer:
        now = self.clock()
        plan = plan_of(q, device_prefix)
        if not uses_only(plan, (Device,)):
            raise invalid("q", "devices_only", "the fleet view filters by device only")
        start, _ = time_range(since, None, now=now)
        page = await self.store.devices(
            condition_of(plan),
            since=start or now - DEFAULT_WINDOW,
            sort=order.sort,
            descending=order.descending,
            limit=limit,
            after=None if cursor is None else order.after(cursor),
            max_seconds=self.timeout,
        )
        data = [device_out(row, now=now) for row in page.devices]
        next_cursor = order.cursor(page.devices[-1]) if page.more and page.devices else None
        return DevicesAnswer(data=data, next_cursor=next_cursor)
