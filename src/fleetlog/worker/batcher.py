"""Batcher: gathers a worker's batch across all its shards, closed at N logs or T seconds.

Each shard's reader adds what it reads to the open batch. A batch closes `max_wait` after its
first entry, or as soon as it holds `max_logs` logs, and a new one opens for the readers while
it is stored. One batch, one commit, whatever the number of shards: batches gathered per shard
would shrink as shards are added under the same load, and each pays fixed costs (a COPY, a
commit, the cache hook) that only the logs in it share.

A reader that took all its stream had waits until the batch it read into closes, then reads
again: reading again at each new entry would cost a round trip per request. What comes in
meanwhile goes into the next batch, so a log waits about `max_wait` to be stored, at most twice
that. While a stream holds more than a read takes (a backlog), reads follow each other at once.
"""

import asyncio
import contextlib
from datetime import timedelta

from fleetlog.queue.consumer import StreamConsumer, StreamEntry


class Batch:
    """The entries gathered so far; `opened` once it has some, `closed` once it is taken."""

    def __init__(self, max_logs: int) -> None:
        self.max_logs = max_logs
        self.entries: list[StreamEntry] = []
        self.logs = 0
        # Logs that reads under way may add, as judged when they were sent.
        self.reserved = 0.0
        self.opened = asyncio.Event()
        self.full = asyncio.Event()
        self.closed = asyncio.Event()

    def add(self, entries: list[StreamEntry]) -> None:
        self.entries += entries
        self.logs += sum(entry.logs for entry in entries)
        self.opened.set()
        if self.logs >= self.max_logs:
            self.full.set()


class Batcher:
    """The open batch of one worker, filled by its shards' readers (`read`) and taken by its
    committer (`close`).

    XREADGROUP counts entries, and an entry holds 1 to 1000 logs; each read asks for a share
    of the entries that the logs still missing call for (judged by the entries seen so far, and
    less what the reads under way may bring; at least one), so that every shard gets read and a
    batch of big entries does not overshoot by much.
    """

    def __init__(
        self,
        consumer: StreamConsumer,
        *,
        shards: int,
        max_logs: int,
        max_wait: timedelta,
        read_count: int,
        poll: timedelta,
    ) -> None:
        self.consumer = consumer
        self.shards = shards
        self.max_logs = max_logs
        self.max_wait = max_wait.total_seconds()
        self.read_count = read_count
        self.poll_ms = max(1, int(poll.total_seconds() * 1000))
        self.batch = Batch(max_logs)
        # Logs per entry, as seen lately; starts high so the first read asks for few entries.
        self._logs_per_entry = max(1.0, max_logs / 10)

    def entries_wanted(self, missing: float) -> int:
        wanted = missing / self._logs_per_entry / self.shards
        return max(1, min(self.read_count, int(wanted)))

    async def read(self, shard: int) -> None:
        """Add the shard's new entries to the open batch, waiting up to the poll time for the
        first; then, if the stream gave all it had (or the batch is full), wait for the batch
        to close."""
        batch = self.batch
        if batch.full.is_set():
            await batch.closed.wait()
            return
        wanted = self.entries_wanted(self.max_logs - batch.logs - batch.reserved)
        reserved = wanted * self._logs_per_entry
        batch.reserved += reserved
        try:
            entries = await self.consumer.read(shard, count=wanted, block_ms=self.poll_ms)
        finally:
            batch.reserved -= reserved
        if not entries:
            return
        seen = sum(entry.logs for entry in entries) / len(entries)
        self._logs_per_entry = max(1.0, (self._logs_per_entry + seen) / 2)
        batch = self.batch  # the one open now: another may have closed during the read
        batch.add(entries)
        if len(entries) < wanted:
            await batch.closed.wait()

    async def close(self, *, ending: asyncio.Event) -> list[StreamEntry]:
        """Wait for the open batch to have entries (or for `ending`), then for it to fill up
        or for `max_wait` to pass (not once `ending` is set); close it and return its entries
        (none when `ending` came first)."""
        batch = self.batch
        await first_of(batch.opened, ending)
        if not ending.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_of(batch.full, ending), timeout=self.max_wait)
        self.batch = Batch(self.max_logs)
        batch.closed.set()
        return batch.entries


async def first_of(*events: asyncio.Event) -> None:
    """Return once one of the events is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
