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
    """Seconds from 2xx to found, per marker (inf when never found); markers refused; and
    the latency of every search the probe sent, which tells a slow search from a slow store."""

    seconds: list[float] = field(default_factory=list)
    refused: int = 0
    searches: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        found, searches = sorted(self.seconds), sorted(self.searches)
        return {
            "markers": len(self.seconds),
            "not_found": sum(1 for value in self.seconds if math.isinf(value)),
            "refused": self.refused,
            "p50_ms": ms(found, 50),
            "p95_ms": ms(found, 95),
            "p99_ms": ms(found, 99),
            "max_ms": ms(found, 100),
            "searches": len(searches),
            "search_p50_ms": ms(searches, 50),
            "search_p95_ms": ms(searches, 95),
        }


def ms(ordered: list[float], share: float) -> float | None:
    """A percentile in milliseconds; None when it is no time (a marker never found, or none)."""
    value = percentile(ordered, share)
    return None if math.isinf(value) or not ordered else round(value * 1000, 1)


def marker_batch(plan: ProbePlan, marker: int) -> dict[str, Any]:
    log = {
        "device_id": f"probe-{plan.run}",
        "log_level": "INFO",
        "message": f"visibility marker {plan.word(marker)}",
        "log_data": {"marker": marker},
    }
    return {"logs": [log]}


async def probe_marker(
    client: httpx.AsyncClient, plan: ProbePlan, marker: int, searches: list[float]
) -> float | None:
    """Seconds until marker `marker` is found (inf if never); None if it was refused. Each
    search's latency goes to `searches`."""
    answer = await client.post("/api/logs/batch", json=marker_batch(plan, marker))
    acked = time.perf_counter()
    if not answer.is_success:
        return None
    params = {"q": plan.word(marker), "since": RECENT, "limit": "1"}
    while time.perf_counter() - acked < plan.timeout_s:
        sent = time.perf_counter()
        found = await client.get("/api/logs", params=params)
        answered = time.perf_counter()
        searches.append(answered - sent)
        if found.status_code == 200 and found.json().get("data"):
            return answered - acked
        await asyncio.sleep(plan.poll_s)
    return math.inf


async def probe_visibility(client: httpx.AsyncClient, plan: ProbePlan) -> Visibility:
    """Post `plan.markers` markers at `plan.pace_s` apart; wait for every one to be found."""
    tasks = []
    visibility = Visibility()
    async with asyncio.TaskGroup() as group:
        for marker in range(plan.markers):
            probe = probe_marker(client, plan, marker, visibility.searches)
            tasks.append(group.create_task(probe))
            await asyncio.sleep(plan.pace_s)
    for task in tasks:
        seconds = task.result()
        if seconds is None:
            visibility.refused += 1
        else:
            visibility.seconds.append(seconds)
    return visibility
