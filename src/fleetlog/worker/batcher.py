"""Batcher: gathers one shard's stream entries into a batch of at most N logs or T seconds."""

import time
from datetime import timedelta

from fleetlog.queue.consumer import StreamConsumer, StreamEntry


class Batcher:
    """Reads a shard until the batch holds `max_logs` logs or `max_wait` passed since its first.

    XREADGROUP counts entries, and an entry holds 1 to 1000 logs; each read asks for as many
    entries as the logs still missing call for, judged by the entries seen so far, so a batch
    of big entries does not overshoot by much.
    """

    def __init__(
        self,
        consumer: StreamConsumer,
        *,
        max_logs: int,
        max_wait: timedelta,
        read_count: int,
        poll: timedelta,
    ) -> None:
        self.consumer = consumer
        self.max_logs = max_logs
        self.max_wait = max_wait.total_seconds()
        self.read_count = read_count
        self.poll_ms = max(1, int(poll.total_seconds() * 1000))
        # Logs per entry, as seen lately; starts high so the first read asks for few entries.
        self._logs_per_entry = max(1.0, max_logs / 10)

    def entries_wanted(self, logs: int) -> int:
        wanted = (self.max_logs - logs) / self._logs_per_entry
        return max(1, min(self.read_count, int(wanted)))

    async def gather(self, shard: int) -> list[StreamEntry]:
        """The next batch of new entries; empty when none came within the poll time."""
        entries = await self._read(shard, 0, self.poll_ms)
        if not entries:
            return []
        logs = sum(entry.logs for entry in entries)
        deadline = time.monotonic() + self.max_wait
        while logs < self.max_logs:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            more = await self._read(shard, logs, remaining_ms)
            if not more:
                break
            entries += more
            logs += sum(entry.logs for entry in more)
        return entries

    async def _read(self, shard: int, logs: int, block_ms: int) -> list[StreamEntry]:
        entries = await self.consumer.read(
            shard, count=self.entries_wanted(logs), block_ms=block_ms
        )
        if entries:
            seen = sum(entry.logs for entry in entries) / len(entries)
            self._logs_per_entry = max(1.0, (self._logs_per_entry + seen) / 2)
        return entries
