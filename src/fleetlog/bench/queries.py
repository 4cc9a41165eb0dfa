"""The query workload's fixed mix: six searches a fleet's operators run, timed one at a time.

Each run of a query draws its own parameters (another device, rare word, common word, phrase,
site), so a cache of earlier answers cannot make a run trivial; the count query is the same
every time, as a dashboard refreshing it would be. "Last 24 h" is the absolute time 24 h
before the corpus's anchor, so the answers are the corpus's known ones however long seeding
took. The runs of the six queries are interleaved, after a warm-up of each.
"""

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import median_low
from typing import Any

import httpx

from fleetlog.bench.corpus import PHRASES, RARE_WORDS, SITES, Corpus
from fleetlog.bench.report import percentile

DAY_S = 86_400.0
PAGE = "100"
COMMON_WORDS = 5
QUERY_NAMES = (
    "device_newest",
    "rare_word_24h",
    "common_word_first_page",
    "phrase_24h",
    "attr_filter_24h",
    "counts_by_level_24h_1m",
)

Request = tuple[str, dict[str, str]]  # path, query parameters


def rfc3339(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


class QueryMix:
    """The request each query sends on its `run`-th run, and how many rows its answer holds."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.since_24h = rfc3339(corpus.anchor - DAY_S)

    def request(self, name: str, run: int) -> Request:
        rng = random.Random(f"queries:{self.corpus.seed}:{name}:{run}")
        corpus, since = self.corpus, self.since_24h
        if name == "device_newest":
            return f"/api/logs/{rng.choice(corpus.devices)}", {"limit": PAGE}
        if name == "rare_word_24h":
            return search(corpus.rare_words[run % RARE_WORDS], since=since)
        if name == "common_word_first_page":
            return search(corpus.vocabulary[run % COMMON_WORDS])
        if name == "phrase_24h":
            return search(f'"{PHRASES[run % len(PHRASES)]}"', since=since)
        if name == "attr_filter_24h":
            return search(f"attr.site:{SITES[run % len(SITES)]} level>=warning", since=since)
        if name == "counts_by_level_24h_1m":
            params = {"since": since, "interval": "1m", "group_by": "level"}
            return "/api/logs/count", params
        raise ValueError(f"not a query of the mix: {name!r}")


def search(q: str, *, since: str | None = None) -> Request:
    params = {"q": q, "limit": PAGE}
    if since is not None:
        params["since"] = since
    return "/api/logs", params


def rows_of(path: str, answer: Any) -> int | None:
    """Buckets in a count, logs in a page; None when the answer is neither."""
    key = "buckets" if path == "/api/logs/count" else "data"
    rows = answer.get(key) if isinstance(answer, dict) else None
    return len(rows) if isinstance(rows, list) else None


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a query: seconds until its whole answer was read; "200", another status, or
    "unexpected" for a 200 that is not the answer asked for; rows; the server's `took_ms`."""

    seconds: float
    outcome: str
    rows: int = 0
    took_ms: float | None = None


@dataclass
class QueryTimes:
    """The measured runs of one query: latencies in seconds, rows, failed runs by outcome,
    and the time the server says it took (`took_ms`, when it answers one)."""

    latencies: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    took_ms: list[float] = field(default_factory=list)

    def add(self, run: Run) -> None:
        if run.outcome != "200":
            self.errors[run.outcome] += 1
            return
        self.latencies.append(run.seconds)
        self.rows.append(run.rows)
        if run.took_ms is not None:
            self.took_ms.append(run.took_ms)

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def ms(share: float) -> float:
            return round(percentile(ordered, share) * 1000, 2)

        return {
            "p50_ms": ms(50),
            "p95_ms": ms(95),
            "p99_ms": ms(99),
            "rows": median_low(self.rows) if self.rows else 0,
            "errors": dict(self.errors),
            "server_p50_ms": round(median_low(self.took_ms), 2) if self.took_ms else None,
        }


async def time_query(client: httpx.AsyncClient, request: Request) -> Run:
    path, params = request
    started = time.perf_counter()
    answer = await client.get(path, params=params)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        return Run(elapsed, str(answer.status_code))
    body = answer.json()
    rows = rows_of(path, body)
    if rows is None:
        return Run(elapsed, "unexpected")
    took = body.get("took_ms")
    return Run(elapsed, "200", rows, float(took) if isinstance(took, int | float) else None)


async def time_mix(
    client: httpx.AsyncClient,
    mix: QueryMix,
    *,
    runs: int,
    warmup: int,
    progress: Callable[[int], None] = lambda done: None,
) -> dict[str, QueryTimes]:
    """Every query `warmup` times unmeasured, then `runs` times measured, interleaved."""
    times = {name: QueryTimes() for name in QUERY_NAMES}
    done = 0
    for number in range(warmup + runs):
        for name in QUERY_NAMES:
            run = await time_query(client, mix.request(name, number))
            done += 1
            progress(done)
            if number >= warmup:
                times[name].add(run)
    return times
