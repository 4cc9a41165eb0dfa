"""Rate limits kept in this process: for embedded mode, where one process serves everything."""

import time

from fleetlog.ratelimit import Decision, Limit, decide

PRUNE_EVERY = 10_000


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._hits = 0

    async def hit(self, subject: str, limit: Limit) -> Decision:
        now = time.monotonic()
        decision, tat = decide(self._tats.get(subject, now), now, limit)
        self._tats[subject] = tat
        self._hits += 1
        if self._hits % PRUNE_EVERY == 0:
            self._prune(now)
        return decision

    def _prune(self, now: float) -> None:
        # A TAT in the past is the same as no entry: forget it, so memory follows active subjects.
        self._tats = {subject: tat for subject, tat in self._tats.items() if tat > now}

    async def close(self) -> None:
        self._tats.clear()
