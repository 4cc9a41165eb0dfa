"""What a rule measures now, per group: counts from the rollups (or a bounded scan of the
logs), or how long each device it watches has been silent.

A threshold rule's window is whole minutes, the current one included: counts are read in
minute buckets of event time, like `GET /api/logs/count`, so a query of devices and levels
only is answered from the per-minute rollups, and any other by counting the logs, under the
query timeout. A silence rule reads the fleet view's `devices` table (receive times).
"""

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetlog.alerts.ledger import Rule
from fleetlog.counts import answerable, condition_of
from fleetlog.records import LogLevel
from fleetlog.search.grammar import parse
from fleetlog.search.plan import Levels, uses_only
from fleetlog.store.logs import as_utc, bounded
from fleetlog.store.rollups import GroupBy, RollupStore, Span
from fleetlog.store.tables import devices

MINUTE = timedelta(minutes=1)
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Reading:
    """A group's value, and whether the rule's condition holds for it."""

    value: float
    holds: bool


def window_span(now: datetime, window_s: int) -> Span:
    """The last `window_s` seconds of whole minutes, ending with the minute `now` is in."""
    until = now.replace(second=0, microsecond=0) + MINUTE
    return Span(until - timedelta(seconds=window_s), until, 60)


class Measure:
    """Reads what rules compare, on the store's read engines, under the query timeout."""

    def __init__(self, rollups: RollupStore, *, query_timeout: timedelta) -> None:
        self.rollups = rollups
        self.timeout = query_timeout.total_seconds()

    async def read(self, rule: Rule, *, now: datetime, known: Iterable[str]) -> dict[str, Reading]:
        """Each group's reading: those measured, and those `known` from earlier states."""
        if rule.kind == "silence":
            return await self._silence(rule, now=now, known=known)
        counts = await self._counts(rule, now=now)
        groups = set(counts) | set(known)
        if rule.group_by is None:
            groups = {""}
        elif rule.group_by == "level":
            groups |= {level.value for level in LogLevel}
        compare = COMPARE[rule.comparison or ">"]
        threshold = float(rule.threshold or 0)
        return {
            group: Reading(counts.get(group, 0), compare(counts.get(group, 0), threshold))
            for group in groups
        }

    async def _counts(self, rule: Rule, *, now: datetime) -> dict[str, float]:
        plan = parse(rule.query)
        span = window_span(now, rule.window_s)
        condition = condition_of(plan)
        group_by = cast(GroupBy | None, rule.group_by)
        if answerable(plan, span):
            buckets = await self.rollups.count(
                condition,
                span,
                group_by=group_by,
                by_device=not uses_only(plan, (Levels,)),
                max_seconds=self.timeout,
                replicas=False,
            )
        else:
            buckets = await self.rollups.scan(
                condition, span, group_by=group_by, max_seconds=self.timeout
            )
        totals: dict[str, float] = {}
        for bucket in buckets:
            key = bucket.key or ""
            totals[key] = totals.get(key, 0) + bucket.count
        return totals

    async def _silence(
        self, rule: Rule, *, now: datetime, known: Iterable[str]
    ) -> dict[str, Reading]:
        """Seconds since each watched device's last log; it holds past the window. A known
        device no longer in the table (forgotten) no longer holds."""
        condition = condition_of(parse(rule.query))

        async def read(conn: AsyncConnection) -> list[tuple[str, datetime]]:
            query = select(devices.c.device_id, devices.c.last_seen)
            query = query.where(condition(conn.dialect.name, devices))
            async with bounded(conn, self.timeout):
                rows = await conn.execute(query)
            return [(device_id, as_utc(last_seen)) for device_id, last_seen in rows]

        # From the primary: a replica that lags would make devices look silent.
        seen = await self.rollups.reads.run(read, replicas=False)
        readings = {group: Reading(0, False) for group in known}
        for device_id, last_seen in seen:
            silent = max(0.0, (now - last_seen).total_seconds())
            readings[device_id] = Reading(silent, silent >= rule.window_s)
        return readings
