"""Rate limits by GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp).

Each subject has a theoretical arrival time (TAT). A request moves it `1 / rate` seconds
forward; the request is allowed while the TAT stays within `burst / rate` seconds of now.
The in-process limiter serves one process; the Redis one shares budgets across processes.

Times are integer microseconds, in `decide` as in the Redis script: the two give the same
answers, and no rounding can move a fresh subject's one allowed request past now.
"""

from dataclasses import dataclass
from typing import Protocol

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float
    burst: int

    @property
    def interval_us(self) -> int:
        """Microseconds each request costs."""
        return max(1, round(MICROS / self.rate))


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float


def decide(tat: int, now: int, limit: Limit) -> tuple[Decision, int]:
    """GCRA step, in microseconds: the decision, and the subject's new TAT (kept when refused)."""
    interval = limit.interval_us
    tat = max(tat, now)
    new_tat = tat + interval
    allow_at = new_tat - limit.burst * interval
    if allow_at > now:
        return Decision(False, 0, (allow_at - now) / MICROS, (tat - now) / MICROS), tat
    remaining = (now - allow_at) // interval
    return Decision(True, remaining, 0.0, (new_tat - now) / MICROS), new_tat


class RateLimiter(Protocol):
    async def hit(self, subject: str, limit: Limit) -> Decision:
        """Count one request of `subject` against `limit`."""

    async def close(self) -> None:
        """Release connections."""
