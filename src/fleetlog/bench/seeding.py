"""Seeding the query workload's corpus through the bulk ingest path, until all of it is found.

The corpus goes to `POST /api/logs/batch` in gzipped 1,000-log requests over a few keep-alive
connections (the load generator's, framing each body when it is due, as 10 million logs do
not fit in memory framed). Seeding is done when the store holds every log: counted in the
store itself when the bench knows where it is, else through `/api/logs/count`. Then
PostgreSQL's planner statistics are refreshed, as autovacuum would some time after a load.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console

from fleetlog.bench.corpus import SPAN_S, Corpus
from fleetlog.bench.loadgen import LoadPlan, LoadResult
from fleetlog.bench.runner import load_with_progress
from fleetlog.bench.spawn import Target
from fleetlog.bench.verify import StoredLogs, wait_for_rows

POLL_S = 1.0
# A big store is counted less often while it catches up: counting costs it a scan.
POLL_S_PER_MILLION_LOGS = 0.5
REQUEST_TIMEOUT_S = 120.0
# Past the backlog cap the server answers 503 + Retry-After: 1; the seeder waits and resends.
RETRY_REFUSED_S = 1.0


class SeedingError(Exception):
    """The corpus could not be seeded whole."""


@dataclass(frozen=True, kw_only=True)
class Seeding:
    accepted_logs_per_s: float
    stored_logs_per_s: float
    seconds: float
    retried: int

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted_logs_per_s": self.accepted_logs_per_s,
            "stored_logs_per_s": self.stored_logs_per_s,
            "seconds": self.seconds,
            "retried_503": self.retried,
        }


def seed_plan(
    corpus: Corpus,
    address: tuple[str, int],
    *,
    connections: int,
    processes: int,
    headers: tuple[tuple[str, str], ...],
) -> LoadPlan:
    host, port = address
    return LoadPlan(
        host=host,
        port=port,
        workload=corpus,
        connections=connections,
        processes=min(processes, connections),
        requests=corpus.requests,
        duration=None,
        rate=None,
        headers=headers,
        timeout=REQUEST_TIMEOUT_S,
        preframe=False,
        retry_refused_s=RETRY_REFUSED_S,
    )


def check_accepted(load: LoadResult) -> None:
    """Raise unless every seeding request got a 2xx (503s were resent until one did)."""
    refused = load.refused()
    if refused:
        raise SeedingError(f"seeding requests were refused: {refused}")


async def api_total(client: httpx.AsyncClient, corpus: Corpus) -> int | None:
    """Logs of the corpus's week (and anything after it) as `/api/logs/count` counts them;
    None when the server answers no count."""
    since = int(corpus.anchor - SPAN_S - 60)
    answer = await client.get("/api/logs/count", params={"since": str(since), "interval": "1d"})
    buckets = answer.json().get("buckets") if answer.status_code == 200 else None
    if not isinstance(buckets, list):
        return None
    return sum(int(bucket["count"]) for bucket in buckets)


async def wait_counted(corpus: Corpus, client: httpx.AsyncClient, *, settle_s: float) -> int:
    """Poll `/api/logs/count` until it counts the whole corpus or `settle_s` pass."""
    deadline = time.monotonic() + settle_s
    while True:
        rows = await api_total(client, corpus)
        if rows is None:
            raise SeedingError(
                "the server answers no /api/logs/count: give --data-dir or --database-url"
            )
        if rows >= corpus.logs or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(POLL_S)


async def wait_stored(
    corpus: Corpus, store: StoredLogs | None, client: httpx.AsyncClient, *, settle_s: float
) -> float:
    """When the last of the corpus's logs was first seen stored; raises past `settle_s`."""
    if store is None:
        rows = await wait_counted(corpus, client, settle_s=settle_s)
        stored_at = time.monotonic()
    else:
        poll_s = max(POLL_S, corpus.logs / 1e6 * POLL_S_PER_MILLION_LOGS)
        rows, stored_at = await wait_for_rows(
            store, corpus.devices, corpus.logs, settle_s=settle_s, poll_s=poll_s
        )
    if rows < corpus.logs:
        raise SeedingError(f"{rows:,} of {corpus.logs:,} seeded logs stored after {settle_s} s")
    return stored_at


def seeding_summary(load: LoadResult, stored_at: float) -> Seeding:
    accepted, (first, last) = load.logs_acked, load.span
    return Seeding(
        accepted_logs_per_s=round(accepted / max(last - first, 1e-9), 1),
        stored_logs_per_s=round(accepted / max(stored_at - first, 1e-9), 1),
        seconds=round(stored_at - first, 2),
        retried=sum(shard.retried for shard in load.shards),
    )


async def seed(
    corpus: Corpus,
    plan: LoadPlan,
    target: Target,
    client: httpx.AsyncClient,
    console: Console,
    *,
    settle_s: float,
) -> Seeding:
    """Send the corpus into the days a server running all week would have prepared, wait
    until the store holds it, refresh the planner's statistics."""
    store = None if target.open_store is None else await target.open_store()
    try:
        if store is not None:
            await store.prepare_days(corpus.days())
        console.print(f"seeding {corpus.logs:,} logs …")
        load = await asyncio.to_thread(load_with_progress, plan, console)
        check_accepted(load)
        console.print("waiting for every seeded log to be stored …")
        stored_at = await wait_stored(corpus, store, client, settle_s=settle_s)
        if store is not None:
            await store.analyze()
    finally:
        if store is not None:
            await store.close()
    return seeding_summary(load, stored_at)
