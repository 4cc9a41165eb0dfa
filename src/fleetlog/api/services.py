"""The services one API process runs on, chosen from the settings and opened for its lifetime."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fleetlog.config import Settings
from fleetlog.ingest import Ingest
from fleetlog.query import LogQuery
from fleetlog.queue import Queue
from fleetlog.queue.local import LocalQueue
from fleetlog.store.engine import create_store_engine
from fleetlog.store.logs import LogStore


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: LogStore
    queue: Queue
    ingest: Ingest
    query: LogQuery

    async def checks(self) -> dict[str, bool]:
        """Health of each part, named as the reference names them where it has them."""
        return {"sqlite": await self.store.ping(), "queue": await self.queue.ping()}


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    store = LogStore(create_store_engine(settings))
    queue = LocalQueue(
        store,
        max_rows=settings.commit_max_rows,
        max_backlog=settings.max_backlog,
        retry_after=settings.retry_after.total_seconds(),
    )
    await queue.start()
    try:
        yield Services(
            settings=settings,
            store=store,
            queue=queue,
            ingest=Ingest(queue),
            query=LogQuery(store, stats_ttl=settings.stats_cache_ttl),
        )
    finally:
        await queue.close()
        await store.close()
