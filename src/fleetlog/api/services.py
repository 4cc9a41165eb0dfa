"""The services one API process runs on, chosen from the settings and opened for its lifetime."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fleetlog.cache import QueryCache
from fleetlog.config import Settings
from fleetlog.counts import CountQuery
from fleetlog.errors import Misconfigured
from fleetlog.idempotency import Registry
from fleetlog.idempotency.answers import AnswerRegistry
from fleetlog.idempotency.redis_answers import RedisAnswers
from fleetlog.idempotency.redis_registry import RedisRegistry
from fleetlog.idempotency.sqlite_answers import SqliteAnswers
from fleetlog.idempotency.sqlite_registry import SqliteRegistry
from fleetlog.ingest import Ingest, event_window
from fleetlog.keys import Keys
from fleetlog.query import Cursors, LogQuery
from fleetlog.queue import Queue
from fleetlog.queue.local import LocalQueue
from fleetlog.queue.redis_streams import RedisStreamQueue, translated
from fleetlog.redis_client import Client, connect
from fleetlog.retention.service import OnDeleted, Retention
from fleetlog.store.engine import create_replica_engines, create_store_engine
from fleetlog.store.logs import LogStore
from fleetlog.store.rollups import RollupStore
from fleetlog.store.sqlite_writer import SqliteWriter
from fleetlog.tail.events import Source
from fleetlog.tail.hub import TailHub
from fleetlog.tail.store import StoreSource
from fleetlog.tail.streams import StreamSource
from fleetlog.tracing import tracing_on


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: LogStore
    queue: Queue
    ingest: Ingest
    query: LogQuery
    counts: CountQuery
    tail: TailHub
    idempotency: Registry
    retention: Retention
    answers: AnswerRegistry
    # Set when the process is asked to stop (api/draining.py).
    draining: asyncio.Event = field(default_factory=asyncio.Event)

    def drain(self) -> None:
        """Stop taking traffic: /ready says 503 and the live tails end."""
        self.draining.set()
        self.tail.end()

    async def checks(self) -> dict[str, bool]:
        """Whether each part answers, named as the reference names them where it has them."""
        if self.settings.embedded:
            return {"sqlite": await self.store.ping(), "queue": await self.queue.ping()}
        return {"redis": await self.queue.ping(), "postgres": await self.store.ping()}

    async def write_checks(self) -> dict[str, bool]:
        """Whether the store takes writes now: the last write's outcome, and the room left."""
        return await self.queue.writable()


def choose_queue(settings: Settings, redis: Client | None) -> Queue:
    """The embedded group commit, or Redis Streams in front of PostgreSQL and the worker."""
    retry_after = settings.retry_after.total_seconds()
    if redis is None:
        return LocalQueue(
            SqliteWriter(settings.sqlite_path, synchronous=settings.sqlite_synchronous),
            max_rows=settings.commit_max_rows,
            max_backlog=settings.max_backlog,
            retry_after=retry_after,
            min_free_disk_bytes=settings.min_free_disk_bytes,
            idempotency_ttl=settings.idempotency_ttl,
        )
    return RedisStreamQueue(
        redis,
        keys=Keys(settings.redis_namespace),
        shards=settings.stream_shards,
        max_backlog=settings.max_backlog,
        retry_after=retry_after,
        memory_high_water=settings.redis_memory_high_water,
        idempotency_ttl=settings.idempotency_ttl,
        traced=tracing_on(settings),
        min_replica_acks=settings.redis_min_replica_acks,
        replica_ack_timeout=settings.redis_replica_ack_timeout,
    )


def choose_registry(settings: Settings, store: LogStore, redis: Client | None) -> Registry:
    """Idempotency keys beside the queue: in Redis for the pipeline, in SQLite embedded."""
    if redis is None:
        return SqliteRegistry(store.engine, ttl=settings.idempotency_ttl)
    return RedisRegistry(redis, keys=Keys(settings.redis_namespace), ttl=settings.idempotency_ttl)


def choose_answers(settings: Settings, store: LogStore, redis: Client | None) -> AnswerRegistry:
    """Idempotency-Keys of requests where the queue marks them: Redis, or SQLite embedded."""
    if redis is None:
        return SqliteAnswers(store.engine, ttl=settings.idempotency_ttl)
    keys = Keys(settings.redis_namespace)
    return RedisAnswers(
        redis, keys=keys, shards=settings.stream_shards, ttl=settings.idempotency_ttl
    )


def open_tail(settings: Settings, store: LogStore, redis: Client | None) -> TailHub:
    """The live tail: XREAD on the shard streams, or a poll of the embedded store."""
    source: Source = StoreSource(store.engine, interval=settings.tail_poll_interval.total_seconds())
    if redis is not None:
        keys = Keys(settings.redis_namespace)
        source = StreamSource(redis, keys=keys, shards=settings.stream_shards)
    return TailHub(
        source,
        max_tails=settings.max_tails,
        buffer=settings.tail_buffer,
        heartbeat=settings.tail_heartbeat.total_seconds(),
        retry_after=settings.retry_after.total_seconds(),
    )


def retiring_answers(redis: Client | None, keys: Keys) -> OnDeleted | None:
    """After retention removed logs, the pipeline's cached answers that may show them retire
    (the worker does the same after its own passes)."""
    if redis is None:
        return None

    async def retire() -> None:
        with translated("bump the cache generation"):
            await redis.incr(keys.cache_generation())

    return retire


@asynccontextmanager
async def retention_passes(settings: Settings, retention: Retention) -> AsyncIterator[None]:
    """Embedded, the server processes run the retention passes (one at a time among them);
    in the pipeline the workers do."""
    if not settings.embedded:
        yield
        return
    stopping = asyncio.Event()
    interval = settings.retention_interval.total_seconds()
    task = asyncio.create_task(retention.run(interval, stopping), name="fleetlog-retention")
    try:
        yield
    finally:
        stopping.set()
        await task


def pipeline_redis(settings: Settings) -> Client | None:
    """The Redis client of the pipeline (queue and query cache); None when embedded."""
    if settings.embedded:
        return None
    if settings.redis_url is None:
        raise Misconfigured("with FLEETLOG_DATABASE_URL, fleetlog needs FLEETLOG_REDIS_URL too")
    return connect(settings.redis_url, cluster=settings.redis_cluster)


@asynccontextmanager
async def open_services(settings: Settings, *, secret: str) -> AsyncIterator[Services]:
    """The services of one API process; `secret` keys the read cursors (the JWT secret)."""
    redis = pipeline_redis(settings)
    store = LogStore(
        create_store_engine(settings),
        replicas=create_replica_engines(settings),
        max_replica_lag=settings.replica_max_lag,
    )
    queue = choose_queue(settings, redis)
    tail = open_tail(settings, store, redis)
    cache = None
    cache_redis = None
    if redis is not None:
        if settings.cache_redis_url is not None:
            cache_redis = connect(settings.cache_redis_url)
        cache = QueryCache(
            redis,
            cache_redis,
            Keys(settings.redis_namespace),
            answers_ttl=settings.query_cache_ttl,
            stats_ttl=settings.stats_cache_ttl,
            max_answer_bytes=settings.query_cache_max_answer_bytes,
            max_bytes=settings.query_cache_max_bytes,
        )
    retention = Retention(
        store.engine, settings, on_deleted=retiring_answers(redis, Keys(settings.redis_namespace))
    )
    try:
        await queue.start()
        services = Services(
            settings=settings,
            store=store,
            queue=queue,
            ingest=Ingest(
                queue, window=event_window(settings), max_line_bytes=settings.max_line_bytes
            ),
            query=LogQuery(
                store,
                cursors=Cursors(secret),
                stats_ttl=settings.stats_cache_ttl,
                max_response_bytes=settings.max_response_bytes,
                query_timeout=settings.query_timeout,
                cache=cache,
            ),
            counts=CountQuery(
                RollupStore(store.reads), query_timeout=settings.query_timeout, cache=cache
            ),
            tail=tail,
            idempotency=choose_registry(settings, store, redis),
            retention=retention,
            answers=choose_answers(settings, store, redis),
        )
        async with retention_passes(settings, retention):
            yield services
    finally:
        await tail.close()
        # The queue owns the Redis client it shares with the cache, and closes it.
        await queue.close()
        if cache_redis is not None:
            await cache_redis.aclose()
        await store.close()
