"""Worker: moves logs from every shard's stream into PostgreSQL, each exactly once.

One reader per shard adds what it reads to the worker's open batch (`worker.batcher`); a
committer closes each batch and stores it in one of up to `stream_shards` commits at once:
COPY its entries as they are (PostgreSQL unpacks them) in one transaction, tell `on_stored`
which devices got logs, then acknowledge and delete each shard's entries in one round trip.
Nothing is acknowledged before its commit; a redelivered entry adds no rows (the store's ledger
of entries, see `store.bulk`).

Failures never drop a log: while PostgreSQL or Redis cannot be used the loop backs off and
retries, holding its batch. A batch the store refuses is split until the bad entry is alone;
that entry is decoded here: one that is not a batch of records moves to the dead-letter stream
at once; any other stays pending, is retried after `claim_idle`, and past `max_deliveries`
deliveries moves to the dead-letter stream too.
Entries left pending by a dead worker, or by a commit that failed unexpectedly, are reclaimed
after `claim_idle`.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.config import Settings
from fleetlog.errors import Misconfigured, RejectedBatch, StoreUnavailable
from fleetlog.keys import Keys
from fleetlog.metrics import (
    DEAD_LETTER_ENTRIES,
    DEAD_LETTERS,
    LOGS_DUPLICATE,
    LOGS_STORED,
    STREAM_BACKLOG,
    STREAM_OLDEST_AGE,
    STREAM_PENDING,
    WORKER_BATCH_LOGS,
    WORKER_RETRIES,
)
from fleetlog.queue.console import QueueConsole
from fleetlog.queue.consumer import StreamConsumer, StreamEntry
from fleetlog.queue.redis_config import check_config
from fleetlog.queue.redis_streams import translated
from fleetlog.records import UndecodableRecords, check_wire_header, decode_records
from fleetlog.redis_client import connect
from fleetlog.retention.service import Retention
from fleetlog.store.bulk import COMMAND_TIMEOUT_S, BulkWriter, Packed
from fleetlog.store.engine import create_store_engine
from fleetlog.tracing import batch_span, exporting_spans
from fleetlog.worker.batcher import Batcher

log = logging.getLogger(__name__)

# Awaited with the devices and the event days whose cached answers a commit made stale.
OnStored = Callable[[set[str], set[str]], Awaitable[None]]

POLL = timedelta(seconds=1)
MAINTENANCE_EVERY_S = 3600.0
FIRST_BACKOFF_S = 0.05
LEDGER_KEEP = timedelta(hours=1)
MIN_STATEMENT_S = 0.5


@dataclass(slots=True)
class Stored:
    """The entries of a batch that got committed, and the devices and event days (UTC,
    YYYY-MM-DD) whose cached answers they make stale."""

    entries: list[StreamEntry] = field(default_factory=list)
    devices: set[str] = field(default_factory=set)
    days: set[str] = field(default_factory=set)

    def __add__(self, other: "Stored") -> "Stored":
        return Stored(
            self.entries + other.entries, self.devices | other.devices, self.days | other.days
        )


def packed(entry: StreamEntry) -> Packed:
    return Packed.of(entry.shard, entry.id, entry.payload)


def named_in(entries: Sequence[StreamEntry]) -> Stored:
    """The entries, with every device and event day they name (decoded here: only for the
    rare redelivered batch)."""
    stored = Stored(list(entries))
    for entry in entries:
        with contextlib.suppress(UndecodableRecords):
            for record in decode_records(entry.payload):
                stored.devices.add(record.device_id)
                stored.days.add(record.ts.date().isoformat())
    return stored


class Backoff:
    """Delays doubling from FIRST_BACKOFF_S up to `limit` seconds; `reset` after a success."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.delay = FIRST_BACKOFF_S

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.limit, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = FIRST_BACKOFF_S


class Worker:
    """Moves logs from the shard streams into PostgreSQL until `stop()`.

    Args:
        consumer: this worker's consumer in the shard groups.
        writer: the PostgreSQL writer (opened).
        settings: shards, batch size and wait, delivery limit, claim idle time, retention.
        on_stored: awaited after each commit, before the acknowledgement, with the devices
            whose logs the batch held; by default it bumps their cache version keys.
        store: the store's engine, for retention passes every FLEETLOG_RETENTION_INTERVAL
            (one at a time among the workers); None for none.
    """

    def __init__(
        self,
        *,
        consumer: StreamConsumer,
        writer: BulkWriter,
        settings: Settings,
        on_stored: OnStored | None = None,
        store: AsyncEngine | None = None,
    ) -> None:
        self.consumer = consumer
        self.writer = writer
        self.settings = settings
        self.on_stored = on_stored or consumer.bump_cache_versions
        self.batcher = Batcher(
            consumer,
            shards=settings.stream_shards,
            max_logs=settings.worker_batch_logs,
            max_wait=settings.worker_batch_wait,
            read_count=settings.worker_read_count,
            poll=min(POLL, settings.claim_idle),
        )
        self.backoff_limit = settings.worker_backoff_max.total_seconds()
        self.claim_idle_ms = max(1, int(settings.claim_idle.total_seconds() * 1000))
        self.idle_removal_ms = int(settings.consumer_idle_removal.total_seconds() * 1000)
        self.console = QueueConsole(
            consumer.client, keys=consumer.keys, shards=settings.stream_shards
        )
        self._stopping = asyncio.Event()
        # Devices and days whose cache versions a failed hook left unbumped (see `_finish`).
        self._unbumped = Stored()
        self.retention = None
        if store is not None:
            self.retention = Retention(store, settings, on_deleted=self._retire_cached_answers)

    def stop(self) -> None:
        """Finish the batches in hand (commit, acknowledge), then return from `run`."""
        self._stopping.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._retire_cached_answers(), name="fleetlog-retire")
            tasks.create_task(self._maintain_partitions(), name="fleetlog-partitions")
            if self.retention is not None:
                interval = self.settings.retention_interval.total_seconds()
                retention = self.retention.run(interval, self._stopping)
                tasks.create_task(retention, name="fleetlog-retention")
            readers_done = asyncio.Event()
            tasks.create_task(self._commit(readers_done), name="fleetlog-commit")
            async with asyncio.TaskGroup() as readers:
                for shard in range(self.settings.stream_shards):
                    readers.create_task(self._read(shard), name=f"fleetlog-shard-{shard}")
            readers_done.set()

    async def _read(self, shard: int) -> None:
        """Feed the shard's new entries to the open batch until stopping; and every half
        `claim_idle`, process what dead workers left pending and look after the shard."""
        backoff = Backoff(self.backoff_limit)
        next_reclaim = 0.0
        ready = False
        while not self._stopping.is_set():
            try:
                if not ready:
                    await self.consumer.ensure_group(shard)
                    ready = True
                if time.monotonic() >= next_reclaim:
                    await self.reclaim(shard)
                    next_reclaim = time.monotonic() + self.claim_idle_ms / 2000
                await self.batcher.read(shard)
                backoff.reset()
            except StoreUnavailable:
                WORKER_RETRIES.labels("redis").inc()
                await self._pause(backoff.next())
            except Exception:
                log.exception("shard %d: the worker loop failed; retrying", shard)
                await self._pause(backoff.next())

    async def _commit(self, readers_done: asyncio.Event) -> None:
        """Close batch after batch and store each, up to `stream_shards` at once, until the
        readers are done and their last batch is stored."""
        commits = asyncio.Semaphore(self.settings.stream_shards)
        async with asyncio.TaskGroup() as tasks:
            while entries := await self.batcher.close(ending=readers_done):
                await commits.acquire()
                tasks.create_task(self._commit_batch(entries, commits))

    async def _commit_batch(self, entries: list[StreamEntry], commits: asyncio.Semaphore) -> None:
        """Store one batch; one that fails stays pending, and is reclaimed after `claim_idle`."""
        try:
            await self.process(entries)
        except StoreUnavailable as exc:
            WORKER_RETRIES.labels("redis").inc()
            log.warning("a batch of %d entries is left pending: %s", len(entries), exc)
        except Exception:
            log.exception("a batch of %d entries is left pending", len(entries))
        finally:
            commits.release()

    async def reclaim(self, shard: int) -> None:
        """Process entries pending too long (their worker died, or their batch was refused);
        then look after the shard (`observe`) and let the store's ledger forget the entries
        that left the stream."""
        entries = await self.consumer.reclaim(
            shard, min_idle_ms=self.claim_idle_ms, count=self.settings.worker_read_count
        )
        if entries:
            log.info("shard %d: reclaimed %d pending entries", shard, len(entries))
            await self.process(entries)
        await self.observe(shard)
        first = await self.consumer.first_deliverable(shard)
        # Kept LEDGER_KEEP after storing: a worker may still be inside a commit of an entry
        # another worker stored and acknowledged (before each retry, _store drops such
        # entries); no single commit lasts that long.
        with contextlib.suppress(StoreUnavailable):  # PostgreSQL down: forgotten next round
            await self.writer.forget(shard, first, stored_before=LEDGER_KEEP)

    async def observe(self, shard: int) -> None:
        """Remove the consumers of dead workers that hold nothing, sample the stored total
        (for logs stored/s, see `queue.console`) and set the shard's gauges."""
        removed = await self.console.remove_idle_consumers(
            shard, idle_ms=self.idle_removal_ms, keep=self.consumer.name
        )
        if removed:
            log.info("shard %d: removed idle consumers holding nothing: %s", shard, removed)
        # A Redis at maxmemory refuses the sample's LPUSH; the worker must go on draining it.
        with contextlib.suppress(StoreUnavailable):
            await self.console.sample_stored(shard)
        status = await self.console.shard(shard)
        STREAM_BACKLOG.labels(str(shard)).set(status.backlog)
        STREAM_PENDING.labels(str(shard)).set(status.pending)
        STREAM_OLDEST_AGE.labels(str(shard)).set(status.oldest_entry_age_s)
        DEAD_LETTER_ENTRIES.labels(str(shard)).set(status.dead_letters)

    async def process(self, entries: Sequence[StreamEntry]) -> None:
        """Store one batch of entries (of any shards) and acknowledge what was stored."""
        started = time.perf_counter()
        WORKER_BATCH_LOGS.observe(sum(entry.logs for entry in entries))
        shards = sorted({entry.shard for entry in entries})
        with batch_span(shards, [entry.trace for entry in entries]):
            unique = {(entry.shard, entry.id): entry for entry in entries}.values()
            batch = [entry for entry in unique if await self._admit(entry)]
            stored = await self._store(batch)
            if stored.entries:
                await self._finish(stored)
        log.debug(
            "shards %s: %d entries, %d of %d logs stored in %.0f ms",
            shards,
            len(entries),
            sum(entry.logs for entry in stored.entries),
            sum(entry.logs for entry in entries),
            (time.perf_counter() - started) * 1000,
        )

    async def _admit(self, entry: StreamEntry) -> bool:
        """False for an entry dead-lettered instead: delivered too often, or not a batch.

        An entry delivered too often whose logs are stored (its workers died between commit
        and acknowledgement) is admitted: storing it adds nothing, and it is acknowledged.
        Dead-lettered, a replay would store its logs again under a new entry id.
        """
        if entry.deliveries > self.settings.max_deliveries and not await self.writer.holds(
            packed(entry)
        ):
            error = f"delivered {entry.deliveries} times without being stored"
            await self._dead_letter(entry, error, reason="max_deliveries")
            return False
        try:
            check_wire_header(entry.payload)
        except UndecodableRecords as exc:
            await self._dead_letter(entry, str(exc), reason="undecodable")
            return False
        return True

    async def _store(self, batch: list[StreamEntry]) -> Stored:
        """Commit the batch; returns what got committed (less when stopping or refused)."""
        if not batch:
            return Stored()
        backoff = Backoff(self.backoff_limit)
        while True:
            try:
                written = await self.writer.write([packed(entry) for entry in batch])
            except StoreUnavailable:
                WORKER_RETRIES.labels("postgres").inc()
                batch = await self._hold_through_pause(batch, backoff.next())
                if not batch:
                    return Stored()
                continue
            except RejectedBatch as exc:
                return await self._split(batch, exc)
            LOGS_STORED.inc(written.rows)
            duplicates = sum(entry.logs for entry in batch) - written.rows
            if not duplicates:
                return Stored(batch, written.devices, written.days)
            # Redelivered: the worker that stored these rows may have died before it retired
            # their devices' and days' cached answers.
            LOGS_DUPLICATE.inc(duplicates)
            return Stored([], written.devices, written.days) + named_in(batch)

    async def _hold_through_pause(
        self, batch: list[StreamEntry], seconds: float
    ) -> list[StreamEntry]:
        """Keep the batch ours through a pause while PostgreSQL is down (idle workers must not
        reclaim it), then return what is still ours to store, asked of Redis right before the
        retry: an entry another worker stored and acknowledged meanwhile is dropped. While
        Redis cannot say, the pause goes on. Empty when stopping."""
        with contextlib.suppress(StoreUnavailable):
            batch = await self.consumer.hold(batch)
        while batch:
            if not await self._pause(seconds):
                return []
            try:
                return await self.consumer.hold(batch)
            except StoreUnavailable:
                WORKER_RETRIES.labels("redis").inc()
        return batch

    async def _split(self, batch: list[StreamEntry], exc: RejectedBatch) -> Stored:
        """Store the halves apart, down to the refused entry, which stays pending."""
        if len(batch) > 1:
            middle = len(batch) // 2
            return await self._store(batch[:middle]) + await self._store(batch[middle:])
        entry = batch[0]
        try:
            decode_records(entry.payload)
        except UndecodableRecords as undecodable:
            await self._dead_letter(entry, str(undecodable), reason="undecodable")
            return Stored()
        log.warning(
            "shard %d: entry %s refused (delivery %d of %d): %s",
            entry.shard,
            entry.id,
            entry.deliveries,
            self.settings.max_deliveries,
            exc.message,
        )
        if entry.deliveries >= self.settings.max_deliveries:
            await self._dead_letter(entry, exc.message, reason="rejected")
        return Stored()

    async def _finish(self, stored: Stored) -> None:
        """Run the hook, then acknowledge each shard's entries; an acknowledgement is retried
        while Redis is down (the rows are committed).

        A hook that fails is not waited on: its devices go again with the next batch's. A Redis
        at maxmemory refuses the hook's INCRs but never XACK and XDEL, and only entries freed
        let it drain; meanwhile their cached answers may be stale, never past their TTL.
        """
        devices = stored.devices | self._unbumped.devices
        days = stored.days | self._unbumped.days
        try:
            await self.on_stored(devices, days)
            self._unbumped.devices -= devices
            self._unbumped.days -= days
        except StoreUnavailable:
            WORKER_RETRIES.labels("redis").inc()
            self._unbumped.devices |= devices
            self._unbumped.days |= days
        by_shard: defaultdict[int, list[StreamEntry]] = defaultdict(list)
        for entry in stored.entries:
            by_shard[entry.shard].append(entry)
        acknowledgements = (self._acknowledge(shard, part) for shard, part in by_shard.items())
        await asyncio.gather(*acknowledgements)

    async def _acknowledge(self, shard: int, entries: list[StreamEntry]) -> None:
        backoff = Backoff(self.backoff_limit)
        while True:
            try:
                await self.consumer.acknowledge(shard, entries)
                return
            except StoreUnavailable:
                # Given up only on stop: redelivered, the entries add no rows.
                WORKER_RETRIES.labels("redis").inc()
                if not await self._pause(backoff.next()):
                    return

    async def _dead_letter(self, entry: StreamEntry, error: str, *, reason: str) -> None:
        if await self.consumer.dead_letter(entry, error, reason=reason):
            DEAD_LETTERS.labels(str(entry.shard), reason).inc()
            log.error(
                "shard %d: entry %s dead-lettered (%s): %s", entry.shard, entry.id, reason, error
            )

    async def _maintain_partitions(self) -> None:
        """Keep the coming days' partitions, hourly."""
        backoff = Backoff(self.backoff_limit)
        while not self._stopping.is_set():
            try:
                done = await self.writer.maintain(ahead=self.settings.partitions_ahead)
            except StoreUnavailable:
                await self._pause(backoff.next())
                continue
            except Exception:
                log.exception("partition maintenance failed; retrying")
                await self._pause(backoff.next())
                continue
            if done.created:
                log.info("partitions created %s", done.created)
            backoff.reset()
            await self._pause(MAINTENANCE_EVERY_S)

    async def _retire_cached_answers(self) -> None:
        """Bump the cache generation, retried until Redis takes it or the worker stops.

        Run as the worker starts too: a worker before it may have stopped while Redis refused
        the INCRs retiring the answers its last commits made stale (see `_finish`).
        """
        backoff = Backoff(self.backoff_limit)
        while True:
            try:
                await self.consumer.bump_cache_generation()
                return
            except StoreUnavailable:
                if not await self._pause(backoff.next()):
                    return

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; False once the worker is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False


def open_writer(settings: Settings) -> BulkWriter:
    """The worker's writer. No statement outlasts half of `claim_idle` (nor 60 s, and it gets
    at least MIN_STATEMENT_S on a busy machine): between attempts the batch is held (XCLAIM
    JUSTID), so while PostgreSQL hangs no idle worker reclaims it, each time counting a
    delivery, until valid entries are dead-lettered."""
    if settings.database_url is None:
        raise Misconfigured("the worker needs FLEETLOG_DATABASE_URL")
    return BulkWriter(
        settings.database_url,
        max_connections=settings.stream_shards + 1,
        command_timeout=min(
            COMMAND_TIMEOUT_S, max(MIN_STATEMENT_S, settings.claim_idle.total_seconds() / 2)
        ),
    )


def consumer_name(settings: Settings) -> str:
    return f"{settings.instance}-{os.getpid()}-{secrets.token_hex(3)}"


async def run_worker(settings: Settings) -> None:
    """The `fleetlog worker` process: run until SIGTERM or SIGINT, then finish and exit."""
    if settings.redis_url is None or settings.database_url is None:
        raise Misconfigured("the worker needs FLEETLOG_REDIS_URL and FLEETLOG_DATABASE_URL")
    client = connect(settings.redis_url, cluster=settings.redis_cluster)
    consumer = StreamConsumer(
        client,
        keys=Keys(settings.redis_namespace),
        shards=settings.stream_shards,
        name=consumer_name(settings),
    )
    writer = open_writer(settings)
    store = create_store_engine(settings)
    try:
        with translated("be reached"):
            await check_config(client)
        await writer.open()
        worker = Worker(consumer=consumer, writer=writer, settings=settings, store=store)
        with exporting_spans(settings, service="fleetlog-worker"):
            running = asyncio.create_task(worker.run(), name="fleetlog-worker")
            bound = settings.shutdown_timeout.total_seconds()

            def stop() -> None:
                worker.stop()
                # A batch that cannot finish in time (a store that hangs) is cut short: its
                # entries stay pending, and another worker reclaims and stores them once.
                asyncio.get_running_loop().call_later(bound, running.cancel)

            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop)
            log.info("worker %s serving %d shards", consumer.name, settings.stream_shards)
            try:
                await running
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                log.warning("worker %s cut its batch short after %.0f s", consumer.name, bound)
        log.info("worker %s stopped", consumer.name)
    finally:
        await store.dispose()
        await writer.close()
        await consumer.close()
