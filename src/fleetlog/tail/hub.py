"""TailHub: one reader per process, and the newest logs it read, shared by every open tail.

The reader appends what it reads to one bounded window of the newest logs; each tail keeps
only its place in that window and filters as it sends. A tail that falls behind the window's
start has its place moved up, and is told how many of the logs it passed over matched its
query (`Dropped`). So memory is bounded by the window, whatever the number of tails or their
speed, and a slow client costs the others nothing. The window keeps at least the last read
whole, so a tail that keeps up never loses a log to a burst.
"""

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from itertools import islice

from fleetlog.errors import FleetlogError, Unavailable
from fleetlog.metrics import TAIL_DROPPED, TAILS
from fleetlog.search.matcher import Predicate, predicate
from fleetlog.search.plan import Node
from fleetlog.tail.events import Dropped, Heartbeat, Position, Source, TailEvent, TailItem

log = logging.getLogger(__name__)

RETRY_READ_S = 1.0
# Logs a tail takes from the window at a time.
TAKE = 100
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


class Window:
    """The newest logs read, numbered from 0 in the order read; `first` is the oldest kept."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.events: deque[TailEvent] = deque()
        self.first = 0

    @property
    def end(self) -> int:
        """The number the next log read will get."""
        return self.first + len(self.events)

    def clear(self) -> None:
        self.first = self.end
        self.events.clear()

    def take(self, start: int, count: int) -> list[TailEvent]:
        """Up to `count` logs from number `start` on (which must not be before `first`)."""
        return list(islice(self.events, start - self.first, start - self.first + count))


class Subscription:
    """One open tail: its query, its place in the window, and what it missed since it last
    sent. A resume first replays the logs between its point and the join."""

    def __init__(
        self,
        matches: Predicate,
        *,
        window: Window,
        heartbeat: float,
        replay: AsyncGenerator[TailEvent | Dropped] | None = None,
    ) -> None:
        self.matches = matches
        self.window = window
        self.heartbeat = heartbeat
        self.replay = replay
        # The number of the next log it takes from the window.
        self.next = window.end
        self.dropped = 0
        self.wake = asyncio.Event()
        self.ended = False

    def pass_over(self, missed: list[TailEvent], end: int) -> None:
        """Move up to `end`, past `missed` (the logs it had not taken): count the matching."""
        count = sum(1 for event in missed if self.matches(event.fields))
        self.dropped += count
        TAIL_DROPPED.inc(count)
        self.next = end

    async def items(self) -> AsyncIterator[TailItem]:
        """What to send, in order, for as long as the client stays and the tail is not ended;
        a heartbeat when idle."""
        if self.replay is not None:
            async with contextlib.aclosing(self.replay) as replay:
                async for item in replay:
                    if isinstance(item, Dropped) or self.matches(item.fields):
                        yield item
        while not self.ended:
            if self.dropped:
                dropped, self.dropped = Dropped(self.dropped), 0
                yield dropped
            elif self.next < self.window.end:
                taken = self.window.take(self.next, TAKE)
                self.next += len(taken)
                for event in taken:
                    if self.matches(event.fields):
                        yield event
                # A query that matches little must not keep the loop to itself.
                await asyncio.sleep(0)
            else:
                self.wake.clear()
                try:
                    async with asyncio.timeout(self.heartbeat):
                        await self.wake.wait()
                except TimeoutError:
                    yield HEARTBEAT


def earliest(first: Position, second: Position) -> Position:
    return tuple(min(a, b) for a, b in zip(first, second, strict=True))


class TailHub:
    """The tails of one process and their one reader, which runs while any tail is open.

    Args:
        source: where new logs come from.
        max_tails: open tails before `subscribe` refuses (429).
        buffer: the newest logs kept for tails that read slower than logs come.
        heartbeat: seconds without a log before a tail sends a heartbeat.
        retry_after: what a refused client is told to wait, in seconds.
    """

    def __init__(
        self, source: Source, *, max_tails: int, buffer: int, heartbeat: float, retry_after: float
    ) -> None:
        self.source = source
        self.max_tails = max_tails
        self.window = Window(buffer)
        self.heartbeat = heartbeat
        self.retry_after = retry_after
        self.subscriptions: set[Subscription] = set()
        # How far the reader has read (and put in the window); set when it starts.
        self.position: Position | None = None
        self.open = 0
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def reading(self) -> bool:
        """Whether the reader runs: while any tail is open, and to the end of the read in hand
        when the last one closed."""
        return self._reader is not None and not self._reader.done()

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
            # Nothing awaited since the join: the tail begins at the window's end, which is
            # where the reader's next read goes.
            subscription = Subscription(
                predicate(plan), window=self.window, heartbeat=self.heartbeat, replay=replay
            )
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
            if not self.reading:
                self.position = await self.source.head()
                self._reader = asyncio.create_task(self._read(), name="fleetlog-tail-reader")
        assert self.position is not None
        return self.position

    async def _read(self) -> None:
        """Read new logs into the window, until no tail is left."""
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
            self.publish(events)
            self.position = position
        self.window.clear()

    def publish(self, events: list[TailEvent]) -> None:
        """Add `events` to the window and wake the tails; tails behind what the window lets go
        pass over it. The window keeps this read whole, however large."""
        window = self.window
        window.events.extend(events)
        excess = len(window.events) - max(window.capacity, len(events))
        if excess > 0:
            kept_from = window.first + excess
            for subscription in self.subscriptions:
                if subscription.next < kept_from:
                    missed = window.take(subscription.next, kept_from - subscription.next)
                    subscription.pass_over(missed, kept_from)
            for _ in range(excess):
                window.events.popleft()
            window.first = kept_from
        for subscription in self.subscriptions:
            subscription.wake.set()

    def end(self) -> None:
        """End every open tail: its stream closes once it has sent what it holds."""
        for subscription in self.subscriptions:
            subscription.ended = True
            subscription.wake.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
