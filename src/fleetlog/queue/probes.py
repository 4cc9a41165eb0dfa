"""Cheap answers for readiness probes: whether a queue can take writes now.

A probe may come every few milliseconds; the reads it needs (free disk, Redis INFO) are taken
at most once a second. A failed write counts for `WRITE_FAILURE_HOLD_S` or until a write
succeeds: long enough for a probe to see it, short enough that a process a load balancer took
out of traffic (so no write can succeed) is offered traffic again to find out.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

READ_EVERY_S = 1.0
WRITE_FAILURE_HOLD_S = 10.0

T = TypeVar("T")


def failed_recently(failed_at: float | None) -> bool:
    """Whether the last write failed (at `failed_at`, a monotonic time) and still counts."""
    return failed_at is not None and time.monotonic() - failed_at < WRITE_FAILURE_HOLD_S


class Cached(Generic[T]):
    """The answer of an async read, read again once it is `every` seconds old."""

    def __init__(self, read: Callable[[], Awaitable[T]], *, every: float = READ_EVERY_S) -> None:
        self.read = read
        self.every = every
        self._value: T | None = None
        self._read_at = float("-inf")

    async def get(self) -> T:
        if self._value is None or time.monotonic() - self._read_at >= self.every:
            self._value = await self.read()
            self._read_at = time.monotonic()
        return self._value
