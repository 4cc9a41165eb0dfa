"""TailHub: one reader per process, fanning new logs out to the bounded buffers of its tails."""

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from fleetlog.errors import FleetlogError, Unavailable
from fleetlog.metrics import TAIL_DROPPED, TAILS
from fleetlog.search.matcher import Predicate, predicate
from fleetlog.search.plan import Node
from fleetlog.tail.events import Dropped, Heartbeat, Position, Source, TailEvent, TailItem

log = logging.getLogger(__name__)

RETRY_READ_S = 1.0
HEARTBEAT = Heartbeat()


class TooManyTails(FleetlogError):
    """This process serves as many tails as it may: retry after `retry_after` seconds."""

    status = 429
    code = "too_many_tails"

    def __init__(self, limit: int, *, retry_after: float) -> None:
        super().__init__(
            f"this process serves {limit} live tails already (FLEETLOG_MAX_TAILS)",
            detail=[{"rule": "max_tails", "limit": limit}],
        )
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class Subscription:
    """One open tail: the logs its plan matches, from its join on, in a bounded buffer.

    A full buffer lets its oldest log go, so a slow client stays near the live edge; the next
    item it gets is then `Dropped`, counting the logs that went. A resume first replays the
    logs between its point and the join.
    """

    def __init__(
        self,
        matches: Predicate,
        *,
        capacity: int,
        heartbeat: float,
        replay: AsyncGenerator[TailEvent | Dropped] | None = None,
    ) -> None:
        self.matches = matches
        self.capacity = capacity
        self.heartbeat = heartbeat
        self.replay = replay
        self.buffer: deque[TailEvent] = deque()
        self.dropped = 0
        self._wake = asyncio.Event()

    def offer(self, event: TailEvent) -> None:
        """Called by the reader for every new log."""
        if not self.matches(event.fields):
            return
        if len(self.buffer) == self.capacity:
            self.buffer.popleft()
            self.dropped += 1
            TAIL_DROPPED.inc()
        self.buffer.append(event)
        self._wake.set()

    async def items(self) -> AsyncIterator[TailItem]:
        """What to send, in order, for as long as the client stays; a heartbeat when idle."""
        if self.replay is not None:
            async with contextlib.aclosing(self.replay) as replay:
                async for item in replay:
                    if isinstance(item, Dropped) or self.matches(item.fields):
                        yield item
        while True:
            if self.dropped:
                dropped, self.dropped = Dropped(self.dropped), 0
                yield dropped
            elif self.buffer:
                yield self.buffer.popleft()
            else:
                self._wake.clear()
                try:
                    async with asyncio.timeout(self.heartbeat):
                        await self._wake.wait()
                except TimeoutError:
                    yield HEARTBEAT


def earliest(first: Position, second: Position) -> Position:
    return tuple(min(a, b) for a, b in zip(first, second, strict=True))


class TailHub:
    """The tails of one process and their one reader, which runs while any tail is open.

    Args:
        source: where new logs come from.
        max_tails: open tails before `subscribe` refuses (429).
        buffer: logs each tail may hold for a client that reads slower than they come.
        heartbeat: seconds without a log before a tail sends a heartbeat.
        retry_after: what a refused client is told to wait, in seconds.
    """

    def __init__(
        self, source: Source, *, max_tails: int, buffer: int, heartbeat: float, retry_after: float
    ) -> None:
        self.source = source
        self.max_tails = max_tails
        self.buffer = buffer
        self.heartbeat = heartbeat
        self.retry_after = retry_after
        self.subscriptions: set[Subscription] = set()
        # How far the reader has read (and offered); set when it starts.
        self.position: Position | None = None
        self.open = 0
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    def resume_point(self, event_id: str) -> Position:
        return self.source.resume_point(event_id)

    @asynccontextmanager
    async def subscribe(
        self, plan: Node, *, after: Position | None = None
    ) -> AsyncIterator[Subscription]:
        """A tail of the logs `plan` matches, from now on (or after `after`, a resume point)."""
        if self.open >= self.max_tails:
            raise TooManyTails(self.max_tails, retry_after=self.retry_after)
        self.open += 1
        TAILS.inc()
        try:
            join = await self._join()
            replay = None if after is None else self.source.replay(earliest(after, join), join)
            subscription = Subscription(
                predicate(plan), capacity=self.buffer, heartbeat=self.heartbeat, replay=replay
            )
            # Nothing awaited since the join: the reader offers this tail every log past it.
            self.subscriptions.add(subscription)
            try:
                yield subscription
            finally:
                self.subscriptions.discard(subscription)
        finally:
            self.open -= 1
            TAILS.dec()

    async def _join(self) -> Position:
        """Where a tail opened now begins: the reader's position, the head if it was idle."""
        async with self._starting:
            if self._reader is None or self._reader.done():
                self.position = await self.source.head()
                self._reader = asyncio.create_task(self._read(), name="fleetlog-tail-reader")
        assert self.position is not None
        return self.position

    async def _read(self) -> None:
        """Read new logs and offer each to every tail, until none is left."""
        while self.subscriptions:
            assert self.position is not None
            try:
                events, position = await self.source.read(self.position)
            except Unavailable as exc:
                log.warning("the live tail cannot read new logs: %s", exc.message)
                await asyncio.sleep(RETRY_READ_S)
                continue
            except Exception:
                log.exception("the live tail failed to read new logs")
                await asyncio.sleep(RETRY_READ_S)
                continue
            for subscription in list(self.subscriptions):
                for event in events:
                    subscription.offer(event)
            self.position = position

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
