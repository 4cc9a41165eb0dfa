"""The services one API process runs on, chosen from the settings and opened for its lifetime."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fleetlog.config import Settings
from fleetlog.errors import Misconfigured
from fleetlog.ingest import Ingest
from fleetlog.keys import Keys
from fleetlog.query import LogQuery
from fleetlog.queue import Queue
from fleetlog.queue.local import LocalQueue
from fleetlog.queue.redis_streams import RedisStreamQueue, connect
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
        if self.settings.embedded:
            return {"sqlite": await self.store.ping(), "queue": await self.queue.ping()}
        return {"redis": await self.queue.ping(), "postgres": await self.store.ping()}


def choose_queue(settings: Settings, store: LogStore) -> Queue:
    """The embedded group commit, or Redis Streams in front of PostgreSQL and the worker."""
    retry_after = settings.retry_after.total_seconds()
    if settings.embedded:
        return LocalQueue(
            store,
            max_rows=settings.commit_max_rows,
            max_backlog=settings.max_backlog,
            retry_after=retry_after,
        )
    if settings.redis_url is None or settings.database_url is None:
        raise Misconfigured("Redis mode needs both FLEETLOG_REDIS_URL and FLEETLOG_DATABASE_URL")
    return RedisStreamQueue(
        connect(settings.redis_url),
        keys=Keys(settings.redis_namespace),
        shards=settings.stream_shards,
        max_backlog=settings.max_backlog,
        retry_after=retry_after,
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    store = LogStore(create_store_engine(settings))
    try:
        queue = choose_queue(settings, store)
    except Misconfigured:
        await store.close()
        raise
    try:
        await queue.start()
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
