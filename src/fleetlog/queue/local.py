"""LocalQueue: the embedded queue, a group commit straight into the store.

Concurrent `put` calls wait together; one task writes everything waiting in one transaction,
so a 2xx costs one shared commit instead of one commit per request.
"""

import asyncio
import logging
import shutil
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from fleetlog.errors import QueueFull, StoreUnavailable
from fleetlog.idempotency.answers import Mark
from fleetlog.queue.probes import Cached, failed_recently
from fleetlog.records import LogRecord
from fleetlog.store.sqlite_writer import KeyMark, SqliteWriter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Waiting:
    records: Sequence[LogRecord]
    mark: Mark | None = None
    done: asyncio.Future[list[int]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class LocalQueue:
    """Queue for embedded mode: `put` returns once the records are committed to the store."""

    def __init__(
        self,
        writer: SqliteWriter,
        *,
        max_rows: int,
        max_backlog: int,
        retry_after: float,
        min_free_disk_bytes: int = 0,
        idempotency_ttl: timedelta = timedelta(days=1),
    ) -> None:
        self.writer = writer
        self.idempotency_ttl = idempotency_ttl.total_seconds()
        self.max_rows = max_rows
        self.max_backlog = max_backlog
        self.retry_after = retry_after
        self.min_free_disk_bytes = min_free_disk_bytes
        # Monotonic time of the last failed group commit; None once a commit succeeds.
        self.commit_failed_at: float | None = None
        self._free_disk = Cached(self._read_free_disk)
        self._waiting: deque[Waiting] = deque()
        self._rows_waiting = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._commit_loop(), name="fleetlog-group-commit")

    async def put(self, records: Sequence[LogRecord], *, mark: Mark | None = None) -> list[str]:
        if self._closing:
            raise StoreUnavailable("fleetlog is shutting down", retry_after=self.retry_after)
        if self._rows_waiting + len(records) > self.max_backlog:
            raise QueueFull(
                f"more than {self.max_backlog} logs are waiting to be stored",
                retry_after=self.retry_after,
            )
        waiting = Waiting(records, mark)
        self._waiting.append(waiting)
        self._rows_waiting += len(records)
        self._wakeup.set()
        return [str(i) for i in await waiting.done]

    async def ensure_durable(self, name: str) -> None:
        """Nothing to wait for: the commit that marked the key stored the records."""

    async def backlog(self) -> int:
        return self._rows_waiting

    async def ping(self) -> bool:
        return self._task is not None and not self._task.done()

    async def writable(self) -> dict[str, bool]:
        """`commit`: the last group commit did not fail; `disk`: the data dir has room left."""
        free = await self._free_disk.get()
        return {
            "commit": not failed_recently(self.commit_failed_at),
            "disk": free >= self.min_free_disk_bytes,
        }

    async def _read_free_disk(self) -> int:
        usage = await asyncio.to_thread(shutil.disk_usage, self.writer.path.parent)
        return usage.free

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self.writer.close()

    async def _commit_loop(self) -> None:
        while not (self._closing and not self._waiting):
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                await self._commit(self._take_group())

    def _take_group(self) -> list[Waiting]:
        group = [self._waiting.popleft()]
        rows = len(group[0].records)
        while self._waiting and rows + len(self._waiting[0].records) <= self.max_rows:
            group.append(self._waiting.popleft())
            rows += len(group[-1].records)
        return group

    async def _commit(self, group: list[Waiting]) -> None:
        records = [record for waiting in group for record in waiting.records]
        try:
            ids = await self.writer.insert_batch(records, marks=self._marks(group))
        except StoreUnavailable as exc:
            self._settle(group, exc)
            return
        except Exception:
            log.exception("group commit of %d logs failed", len(records))
            self._settle(
                group, StoreUnavailable("the log store failed", retry_after=self.retry_after)
            )
            return
        offset = 0
        for waiting in group:
            n = len(waiting.records)
            # A request cancelled while waiting (its client went away) was committed all the same.
            if not waiting.done.cancelled():
                waiting.done.set_result(ids[offset : offset + n])
            offset += n
        self._rows_waiting -= len(records)
        self.commit_failed_at = None

    def _marks(self, group: list[Waiting]) -> list[KeyMark]:
        """The Idempotency-Keys to mark queued in the group's commit, with their rows."""
        marks, offset = [], 0
        expires_at = time.time() + self.idempotency_ttl
        for waiting in group:
            if waiting.mark is not None:
                marks.append(KeyMark(waiting.mark, offset, len(waiting.records), expires_at))
            offset += len(waiting.records)
        return marks

    def _settle(self, group: list[Waiting], exc: Exception) -> None:
        self.commit_failed_at = time.monotonic()
        for waiting in group:
            if not waiting.done.cancelled():
                waiting.done.set_exception(exc)
        self._rows_waiting -= sum(len(waiting.records) for waiting in group)
