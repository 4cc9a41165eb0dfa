"""How soon an accepted log can be found, while ingest runs at a steady rate.

A marker is a log carrying a word of its own. The probe posts one every `pace_s`, notes when
its 2xx arrived, then searches for the word every `poll_s` until a search returns it; its
visibility is the time from the 2xx to the end of that search's answer, so it includes one
search's latency and up to `poll_s` of polling grain. A marker not found within `timeout_s`
counts as never visible: the percentiles it reaches are reported as null.
"""

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from fleetlog.bench.report import percentile

RECENT = "15m"


@dataclass(frozen=True, kw_only=True)
class ProbePlan:
    run: str
    markers: int = 200
    pace_s: float = 0.1
    poll_s: float = 0.025
    timeout_s: float = 10.0

    @property
    def duration_s(self) -> float:
        """The longest the probe can take."""
        return self.markers * self.pace_s + self.timeout_s

    def word(self, marker: int) -> str:
        return f"vis{self.run}m{marker}"


@dataclass
class Visibility:
    """Seconds from 2xx to found, per marker (inf when never found); markers refused."""

    seconds: list[float] = field(default_factory=list)
    refused: int = 0

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.seconds)

        def ms(share: float) -> float | None:
            value = percentile(ordered, share)
            return None if math.isinf(value) else round(value * 1000, 1)

        return {
            "markers": len(self.seconds),
            "not_found": sum(1 for value in self.seconds if math.isinf(value)),
            "refused": self.refused,
            "p50_ms": ms(50),
            "p95_ms": ms(95),
            "p99_ms": ms(99),
            "max_ms": ms(100),
        }


def marker_batch(plan: ProbePlan, marker: int) -> dict[str, Any]:
    log = {
        "device_id": f"probe-{plan.run}",
        "log_level": "INFO",
        "message": f"visibility marker {plan.word(marker)}",
        "log_data": {"marker": marker},
    }
    return {"logs": [log]}


async def probe_marker(client: httpx.AsyncClient, plan: ProbePlan, marker: int) -> float | None:
    """Seconds until marker `marker` is found (inf if never); None if it was refused."""
    answer = await client.post("/api/logs/batch", json=marker_batch(plan, marker))
    acked = time.perf_counter()
    if not answer.is_success:
        return None
    params = {"q": plan.word(marker), "since": RECENT, "limit": "1"}
    while time.perf_counter() - acked < plan.timeout_s:
        found = await client.get("/api/logs", params=params)
        if found.status_code == 200 and found.json().get("data"):
            return time.perf_counter() - acked
        await asyncio.sleep(plan.poll_s)
    return math.inf


async def probe_visibility(client: httpx.AsyncClient, plan: ProbePlan) -> Visibility:
    """Post `plan.markers` markers at `plan.pace_s` apart; wait for every one to be found."""
    tasks = []
    async with asyncio.TaskGroup() as group:
        for marker in range(plan.markers):
            tasks.append(group.create_task(probe_marker(client, plan, marker)))
            await asyncio.sleep(plan.pace_s)
    visibility = Visibility()
    for task in tasks:
        seconds = task.result()
        if seconds is None:
            visibility.refused += 1
        else:
            visibility.seconds.append(seconds)
    return visibility
