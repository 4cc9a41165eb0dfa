"""`fleetlog bench --workload query`: seed a fleet's week, time the query mix, probe visibility.

1. Seed `logs` logs of the corpus (`corpus.py`) through the bulk ingest path (`seeding.py`),
   with the spawned server accepting event times up to `MAX_EVENT_AGE_S` old, and wait until
   the store holds all of them; ANALYZE on PostgreSQL.
2. Time the query mix (`queries.py`): each query `runs` times after a warm-up, one at a time.
3. With ingest running at `ingest_rate` logs/s (the load generator's open loop, in its own
   process), measure how soon accepted logs are found by search (`visibility.py`).
"""

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleetlog.bench.corpus import Corpus
from fleetlog.bench.loadgen import LoadPlan, LoadResult, run_load
from fleetlog.bench.queries import DAY_S, QUERY_NAMES, QueryMix, QueryTimes, time_mix
from fleetlog.bench.runner import BenchOptions, api_key_headers, http_address, open_target
from fleetlog.bench.seeding import api_total, seed, seed_plan
from fleetlog.bench.spawn import Target
from fleetlog.bench.visibility import ProbePlan, probe_visibility

# A week of history and the minutes seeding takes: the spawned server's event window.
MAX_EVENT_AGE_S = 8 * 86_400
LIVE_BATCH = 100
LEAD_IN_S = 3.0
QUERY_TIMEOUT_S = 60.0


@dataclass(frozen=True, kw_only=True)
class QueryOptions:
    """The query workload's own knobs; where and how to seed come from `BenchOptions`."""

    logs: int = 100_000
    runs: int = 50
    warmup: int = 5
    markers: int = 200
    ingest_rate: float = 10_000.0
    seed: int = 1
    connections: int = 8


async def store_mode(client: httpx.AsyncClient) -> str:
    """What the server stores logs in, as its /health says."""
    mode = (await client.get("/health")).json().get("mode")
    return {"embedded": "sqlite", "redis-postgres": "postgresql"}.get(mode, str(mode))


def progress_bar(console: Console) -> Progress:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, transient=True)


def live_plan(plan: LoadPlan, probe: ProbePlan, query: QueryOptions) -> LoadPlan:
    """The steady ingest beside the probe: `ingest_rate` logs/s in 100-log requests."""
    duration = LEAD_IN_S + probe.duration_s
    live = Corpus(
        seed=query.seed,
        logs=int(query.ingest_rate * duration) + LIVE_BATCH * 10,
        anchor=0.0,
        batch=LIVE_BATCH,
        live=True,
    )
    return LoadPlan(
        host=plan.host,
        port=plan.port,
        workload=live,
        connections=query.connections,
        processes=1,
        requests=None,
        duration=duration,
        rate=query.ingest_rate / LIVE_BATCH,
        headers=plan.headers,
    )


def live_rate(load: LoadResult) -> dict[str, Any]:
    first, last = load.span
    accepted = round(load.logs_acked / max(last - first, 1e-9), 1)
    return {"accepted_logs_per_s": accepted, "errors": load.refused()}


async def visibility_under_load(
    client: httpx.AsyncClient, plan: LoadPlan, query: QueryOptions, console: Console
) -> dict[str, Any]:
    probe = ProbePlan(run=uuid.uuid4().hex[:8], markers=query.markers)
    console.print(
        f"visibility: {query.markers} markers with ingest at {query.ingest_rate:,.0f} logs/s …"
    )
    load = asyncio.create_task(
        asyncio.to_thread(run_load, live_plan(plan, probe, query), lambda logs: None)
    )
    await asyncio.sleep(LEAD_IN_S)
    visibility = await probe_visibility(client, probe)
    backlog = await backlog_now(client)
    return {**visibility.as_json(), "ingest": {**live_rate(await load), "backlog_at_end": backlog}}


async def backlog_now(client: httpx.AsyncClient) -> int | None:
    """Accepted logs not yet stored, as /ready says: one that grows means the store fell behind."""
    backlog = (await client.get("/ready")).json().get("backlog")
    return backlog if isinstance(backlog, int) else None


async def time_with_progress(
    client: httpx.AsyncClient, corpus: Corpus, query: QueryOptions, console: Console
) -> dict[str, QueryTimes]:
    with progress_bar(console) as bar:
        task = bar.add_task("queries", total=(query.warmup + query.runs) * len(QUERY_NAMES))
        return await time_mix(
            client,
            QueryMix(corpus),
            runs=query.runs,
            warmup=query.warmup,
            progress=lambda done: bar.update(task, completed=done),
        )


async def measure(
    target: Target, options: BenchOptions, query: QueryOptions, console: Console
) -> dict[str, Any]:
    """Everything after the target is up: seed, wait, analyze, queries, visibility."""
    headers = api_key_headers(options.api_key)
    corpus = Corpus(seed=query.seed, logs=query.logs, anchor=time.time())
    plan = seed_plan(
        corpus,
        http_address(target.url),
        connections=query.connections,
        processes=options.processes,
        headers=headers,
    )
    async with httpx.AsyncClient(
        base_url=target.url, headers=dict(headers), timeout=QUERY_TIMEOUT_S
    ) as client:
        store = await store_mode(client)
        seeding = await seed(corpus, plan, target, client, console, settle_s=options.settle_timeout)
        counted = await api_total(client, corpus)
        if counted is not None and counted != corpus.logs:
            console.print(f"[yellow]note:[/] /api/logs/count counts {counted:,} seeded logs")
        times = await time_with_progress(client, corpus, query, console)
        visibility = await visibility_under_load(client, plan, query, console)
    return {
        "workload": {"name": "query", **asdict(query)},
        "target": target.description,
        "store": store,
        "logs": corpus.logs,
        "seeded_by": "ingest",
        "seeding": seeding.as_json(),
        "corpus": {
            "seed": corpus.seed,
            "anchor": corpus.anchor,
            "rare_word_24h_expected": corpus.rare_in_window(DAY_S),
        },
        "counted_by_api": counted,
        "queries": {name: times[name].as_json() for name in QUERY_NAMES},
        "visibility_p99_ms": visibility["p99_ms"],
        "visibility": visibility,
    }


def run_query_bench(options: BenchOptions, query: QueryOptions, console: Console) -> dict[str, Any]:
    """The query workload against `--url` or a spawned stack; the summary as JSON-ready data."""
    settings = {"max_event_age": str(MAX_EVENT_AGE_S)}
    with open_target(options, settings) as target:
        console.print(f"[bold]fleetlog bench[/] query workload → {target.description}")
        return asyncio.run(measure(target, options, query, console))


def render_query(summary: dict[str, Any], console: Console) -> None:
    seeding, counted = summary["seeding"], summary["counted_by_api"]
    console.print(
        f"[bold]fleetlog bench: query workload[/] against {summary['target']}\n"
        f"{summary['logs']:,} logs seeded by {summary['seeded_by']} into {summary['store']} in "
        f"{seeding['seconds']:,.1f} s: {seeding['accepted_logs_per_s']:,.0f} logs/s accepted, "
        f"{seeding['stored_logs_per_s']:,.0f} logs/s stored; /api/logs/count counts "
        + ("nothing (no such route)" if counted is None else f"{counted:,}")
    )
    table = Table(title="queries (ms)")
    for column in ("query", "P50", "P95", "P99", "server P50", "rows", "errors"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for name, stats in summary["queries"].items():
        errors = ", ".join(f"{status}: {n}" for status, n in stats["errors"].items()) or "-"
        cells = (stats["p50_ms"], stats["p95_ms"], stats["p99_ms"], stats["server_p50_ms"])
        shown = ("-" if value is None else f"{value:.1f}" for value in cells)
        table.add_row(name, *shown, str(stats["rows"]), errors)
    console.print(table)
    visibility = summary["visibility"]
    console.print(
        f"visibility P99: {visibility['p99_ms']} ms, P50: {visibility['p50_ms']} ms "
        f"({visibility['not_found']} of {visibility['markers']} markers never found), ingest at "
        f"{visibility['ingest']['accepted_logs_per_s']:,.0f} logs/s"
    )
