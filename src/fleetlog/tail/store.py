"""StoreSource: the embedded tail, polling the `logs` table for ids past the last one read.

Every server process on one SQLite file polls it on its own, so a tail sees the commits of
them all. SQLite commits one writer at a time and ids grow in commit order: `id > last` never
skips a committed log. The event id is the log's id.
"""

import asyncio
import re
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.search.matcher import LogFields
from fleetlog.store.engine import connected
from fleetlog.store.logs import as_utc
from fleetlog.store.tables import logs
from fleetlog.tail.events import Dropped, Position, TailEvent, unknown_event_id

PAGE = 1000
# The most logs a resume looks at: past that many since its point, the oldest are skipped.
MAX_REPLAY = 100_000
EVENT_ID = re.compile(r"[0-9]{1,18}")
COLUMNS = (
    logs.c.id,
    logs.c.device_id,
    logs.c.log_level,
    logs.c.message,
    logs.c.log_data,
    logs.c.created_at,
    logs.c.received_at,
)


def event_of(row: Row[Any, Any, Any, Any, Any, Any, Any]) -> TailEvent:
    fields = LogFields(
        device_id=row.device_id,
        log_level=row.log_level,
        message=row.message,
        log_data=row.log_data,
    )
    return TailEvent(
        id=str(row.id),
        lane=0,
        place=(row.id,),
        fields=fields,
        log_id=row.id,
        created_at=as_utc(row.created_at),
        received_at=as_utc(row.received_at),
    )


class StoreSource:
    """New logs of the store, read every `interval` seconds (at once while pages come full)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        interval: float,
        page: int = PAGE,
        max_replay: int = MAX_REPLAY,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.page = page
        self.max_replay = max_replay
        self._behind = False

    async def head(self) -> Position:
        async with connected(self.engine) as conn:
            last = (await conn.execute(select(func.max(logs.c.id)))).scalar()
        return ((last or 0,),)

    async def read(self, after: Position) -> tuple[list[TailEvent], Position]:
        if not self._behind:
            await asyncio.sleep(self.interval)
        events = await self._page(after[0][0])
        self._behind = len(events) == self.page
        return events, (events[-1].place,) if events else after

    async def replay(self, after: Position, until: Position) -> AsyncGenerator[TailEvent | Dropped]:
        last, end = after[0][0], until[0][0]
        if end - last > self.max_replay:
            # Ids grow by one: the difference counts the logs skipped, matching or not.
            yield Dropped(end - self.max_replay - last)
            last = end - self.max_replay
        while last < end and (events := await self._page(last, until=end)):
            for event in events:
                yield event
            last = events[-1].place[0]

    def resume_point(self, event_id: str) -> Position:
        if EVENT_ID.fullmatch(event_id) is None:
            raise unknown_event_id(event_id)
        return ((int(event_id),),)

    async def _page(self, after: int, *, until: int | None = None) -> list[TailEvent]:
        query = select(*COLUMNS).where(logs.c.id > after).order_by(logs.c.id).limit(self.page)
        if until is not None:
            query = query.where(logs.c.id <= until)
        async with connected(self.engine) as conn:
            rows = (await conn.execute(query)).all()
        return [event_of(row) for row in rows]
