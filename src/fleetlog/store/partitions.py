"""Day partitions of PostgreSQL's `logs`: created ahead of time; retention drops them whole
(retention/day_drops.py).

A partition covers one UTC day of event time, `[day 00:00, next day 00:00)`, and is named
`logs_pYYYYMMDD`. Rows for days without a partition land in `logs_default`; when that day's
partition is created later, they move into it in the same transaction, which holds `logs`
exclusively: a query planned while the rows move would scan the default partition after they
left it and not the partition they went to, and find none of them.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import asyncpg  # type: ignore[import-untyped]

PARTITION_NAME = re.compile(r"^logs_p(\d{8})$")
# One worker at a time maintains partitions; the others skip the round.
MAINTENANCE_LOCK = 0x666C6F67
# How long creating a partition waits for the queries and writes on `logs` to let it have the
# table; past it, the round fails and is tried again.
CREATE_LOCK_TIMEOUT = "5s"
ONE_DAY = timedelta(days=1)


@dataclass(slots=True)
class Maintenance:
    created: list[str] = field(default_factory=list)


def partition_name(day: date) -> str:
    return f"logs_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def partition_days(conn: asyncpg.Connection) -> dict[date, str]:
    """The day partitions attached to `logs`, by day."""
    names = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'logs'::regclass"
    )
    days = {}
    for (name,) in names:
        match = PARTITION_NAME.match(name)
        if match:
            days[datetime.strptime(match[1], "%Y%m%d").date()] = name
    return days


async def create_partition(conn: asyncpg.Connection, day: date) -> str:
    """Create and attach `day`'s partition, taking over its rows from the default partition."""
    name = partition_name(day)
    start, end = day_start(day), day_start(day + ONE_DAY)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{CREATE_LOCK_TIMEOUT}'")
        await conn.execute("LOCK TABLE logs IN ACCESS EXCLUSIVE MODE")
        await conn.execute(f"CREATE TABLE {name} (LIKE logs INCLUDING DEFAULTS)")
        await conn.execute(
            f"WITH moved AS (DELETE FROM logs_default WHERE created_at >= $1 AND created_at < $2 "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            start,
            end,
        )
        await conn.execute(
            f"ALTER TABLE logs ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    return name


async def maintain(conn: asyncpg.Connection, *, today: date, ahead: int) -> Maintenance:
    """Partitions from yesterday to `ahead` days on exist."""
    done = Maintenance()
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK):
        return done
    try:
        existing = await partition_days(conn)
        for offset in range(-1, ahead + 1):
            day = today + offset * ONE_DAY
            if day not in existing:
                done.created.append(await create_partition(conn, day))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK)
    return done
