"""Rate limits kept in this process: for embedded mode, where one process serves everything."""

import time
from collections.abc import Callable

from fleetlog.ratelimit import MICROS, Decision, Limit, decide

PRUNE_EVERY = 10_000


class MemoryRateLimiter:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._hits = 0

    async def hit(self, subject: str, limit: Limit) -> Decision:
        now = round(self._clock() * MICROS)
        decision, tat = decide(self._tats.get(subject, now), now, limit)
        self._tats[subject] = tat
        self._hits += 1
        if self._hits % PRUNE_EVERY == 0:
            self._prune(now)
        return decision

    def _prune(self, now: int) -> None:
        # A TAT in the past is the same as no entry: forget it, so memory follows active subjects.
        self._tats = {subject: tat for subject, tat in self._tats.items() if tat > now}

    async def close(self) -> None:
        self._tats.clear()
