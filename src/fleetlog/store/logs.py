"""LogStore: insert batches of records, read them back newest first, count them."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.records import LogOut
from fleetlog.store.replicas import ReadEngines
from fleetlog.store.tables import logs

RECENT_DEVICES = 10


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    by_level: dict[str, int]
    recent_devices: list[str]


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time fleetlog stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class LogStore:
    """The one query layer over the `logs` table, for SQLite and PostgreSQL alike."""

    def __init__(self, engine: AsyncEngine, *, replicas: Sequence[AsyncEngine] = ()) -> None:
        self.engine = engine
        self.reads = ReadEngines(engine, replicas)

    async def latest(self, device_id: str, *, limit: int, replicas: bool = True) -> list[LogOut]:
        """The device's newest logs by event time, newest first (`replicas`: see ReadEngines)."""
        query = (
            select(logs)
            .where(logs.c.device_id == device_id)
            .order_by(logs.c.created_at.desc(), logs.c.id.desc())
            .limit(limit)
        )

        async def read(conn: AsyncConnection) -> Sequence[RowMapping]:
            return (await conn.execute(query)).mappings().all()

        return [
            LogOut(
                id=row["id"],
                device_id=row["device_id"],
                log_level=row["log_level"],
                message=row["message"],
                log_data=row["log_data"],
                created_at=as_utc(row["created_at"]),
                received_at=as_utc(row["received_at"]),
            )
            for row in await self.reads.run(read, replicas=replicas)
        ]

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
