"""What a retention pass removed, or a preview would: per rule, rows, days, oldest, newest."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetlog.retention.archive import ArchivedFile
from fleetlog.retention.rules import Rule, due
from fleetlog.store.logs import as_utc
from fleetlog.store.tables import logs


@dataclass(slots=True)
class Tally:
    """The logs of one rule that go: how many, over how many event days, the oldest and the
    newest event time."""

    rule: Rule
    rows: int = 0
    days: set[str] = field(default_factory=set)
    oldest: datetime | None = None
    newest: datetime | None = None

    def add(self, rows: int, *, oldest: datetime, newest: datetime, days: set[str]) -> None:
        oldest, newest = as_utc(oldest), as_utc(newest)
        self.rows += rows
        self.days |= days
        self.oldest = oldest if self.oldest is None else min(self.oldest, oldest)
        self.newest = newest if self.newest is None else max(self.newest, newest)


@dataclass(slots=True)
class Report:
    """A pass (or a preview) at `at`: tallies in the order of the rules, most specific first;
    the day partitions dropped whole (PostgreSQL) and the archive files written."""

    at: datetime
    tallies: list[Tally]
    partitions: list[str] = field(default_factory=list)
    archived: list[ArchivedFile] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(tally.rows for tally in self.tallies)

    def tally_of(self, rule: Rule) -> Tally:
        return next(tally for tally in self.tallies if tally.rule == rule)


def day_of(dialect: str) -> ColumnElement[Any]:
    """A stored time's UTC day, as text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", logs.c.created_at), "YYYY-MM-DD")
    return func.substr(logs.c.created_at, 1, 10)


async def preview_tally(
    conn: AsyncConnection, rule: Rule, rules: list[Rule], now: datetime
) -> Tally:
    """What a pass at `now` would remove for `rule`, counted without removing anything."""
    where = due(rule, rules, now)
    totals = select(func.count(), func.min(logs.c.created_at), func.max(logs.c.created_at))
    rows, oldest, newest = (await conn.execute(totals.where(where))).one()
    tally = Tally(rule)
    if rows:
        days = await conn.execute(select(day_of(conn.dialect.name)).distinct().where(where))
        tally.add(rows, oldest=oldest, newest=newest, days=set(days.scalars()))
    return tally
