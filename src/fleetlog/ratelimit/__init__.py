"""Rate limits by GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp).

Each subject has a theoretical arrival time (TAT). A request moves it `1 / rate` seconds
forward; the request is allowed while the TAT stays within `burst / rate` seconds of now.
The in-process limiter serves one process; the Redis one shares budgets across processes.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float
    burst: int

    @property
    def interval(self) -> float:
        """Seconds each request costs."""
        return 1.0 / self.rate


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float


def decide(tat: float, now: float, limit: Limit) -> tuple[Decision, float]:
    """GCRA step: the decision, and the subject's new TAT (unchanged when refused)."""
    tat = max(tat, now)
    new_tat = tat + limit.interval
    allow_at = new_tat - limit.burst * limit.interval
    if allow_at > now:
        return Decision(False, 0, allow_at - now, tat - now), tat
    remaining = int((now - allow_at) / limit.interval + 1e-9)
    return Decision(True, remaining, 0.0, new_tat - now), new_tat


class RateLimiter(Protocol):
    async def hit(self, subject: str, limit: Limit) -> Decision:
        """Count one request of `subject` against `limit`."""

    async def close(self) -> None:
        """Release connections."""
