"""A whole bench run: pick the target, load it, check the store end to end, summarize."""

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fleetlog.bench.cpu import CpuClock
from fleetlog.bench.loadgen import LoadPlan, LoadResult, run_load
from fleetlog.bench.report import BacklogMemory, Summary, backlog_memory, summarize
from fleetlog.bench.spawn import HeldWorker, StackKind, Target, spawn_stack
from fleetlog.bench.verify import PostgresLogs, SqliteLogs, StoredLogs, verify
from fleetlog.bench.workload import Workload, WorkloadName
from fleetlog.config import Settings

# With Idempotency-Keys, the pause before a request answered 503 or 409 is sent again.
KEYED_RETRY_S = 0.2


class BenchError(Exception):
    """The bench cannot run as asked."""


@dataclass(frozen=True)
class WorkloadDefaults:
    devices: int
    batch: int
    concurrency: int
    gzip: bool
    iterations: int


DEFAULTS: dict[WorkloadName, WorkloadDefaults] = {
    # The reference's stress test: 100 devices, 5 logs per request, 200 connections.
    "reference": WorkloadDefaults(devices=100, batch=5, concurrency=200, gzip=False, iterations=10),
    # Shippers sending big gzipped batches; few connections keep the backlog under its cap.
    "bulk": WorkloadDefaults(devices=100, batch=1000, concurrency=16, gzip=True, iterations=30),
    # The bulk workload's logs as shippers send them (bench/shippers.py): gzipped OTLP protobuf
    # and Elasticsearch NDJSON, Loki's protobuf in its own snappy.
    "otlp": WorkloadDefaults(devices=100, batch=1000, concurrency=16, gzip=True, iterations=30),
    "es-bulk": WorkloadDefaults(devices=100, batch=1000, concurrency=16, gzip=True, iterations=30),
    "loki": WorkloadDefaults(devices=100, batch=1000, concurrency=16, gzip=False, iterations=30),
}


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """A bench run as asked on the command line; None means the workload's default."""

    workload: WorkloadName = "reference"
    iterations: int | None = None
    duration: float | None = None
    rate: float | None = None
    devices: int | None = None
    batch: int | None = None
    concurrency: int | None = None
    processes: int = 1
    url: str | None = None
    spawn: StackKind | None = None
    workers: int = 2
    worker_processes: int = 1
    shards: int | None = None
    min_replica_acks: int | None = None
    data_dir: Path | None = None
    database_url: str | None = None
    server_pids: Sequence[int] = ()
    api_key: str | None = None
    settle_timeout: float = 60.0
    timeout: float = 60.0
    idempotency_keys: bool = False
    hold_worker: bool = False


def build_workload(options: BenchOptions) -> Workload:
    defaults = DEFAULTS[options.workload]
    return Workload(
        name=options.workload,
        run=uuid.uuid4().hex[:8],
        devices=options.devices or defaults.devices,
        batch=options.batch or defaults.batch,
        gzip=defaults.gzip,
        started_ns=time.time_ns(),
    )


def http_address(url: str) -> tuple[str, int]:
    """(host, port) of a plain-HTTP URL, the only kind the load generator speaks."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise BenchError(f"{url!r}: the bench speaks plain HTTP/1.1 (http://host:port)")
    return parts.hostname, parts.port or 80


def build_plan(options: BenchOptions, url: str, workload: Workload) -> LoadPlan:
    defaults = DEFAULTS[options.workload]
    iterations = options.iterations
    if iterations is None and options.duration is None:
        iterations = defaults.iterations
    host, port = http_address(url)
    concurrency = options.concurrency or defaults.concurrency
    return LoadPlan(
        host=host,
        port=port,
        workload=workload,
        connections=concurrency,
        processes=min(options.processes, concurrency),
        requests=None if iterations is None else iterations * workload.requests_per_iteration,
        duration=options.duration,
        rate=None if options.rate is None else options.rate / workload.batch,
        headers=api_key_headers(options.api_key),
        timeout=options.timeout,
        idempotency_keys=workload.run if options.idempotency_keys else None,
        retry_refused_s=KEYED_RETRY_S if options.idempotency_keys else None,
    )


def api_key_headers(api_key: str | None) -> tuple[tuple[str, str], ...]:
    return () if api_key is None else (("X-API-Key", api_key),)


def describe(plan: LoadPlan, workload: Workload, options: BenchOptions) -> dict[str, Any]:
    requests_per_iteration = workload.requests_per_iteration
    return {
        "name": workload.name,
        "devices": workload.devices,
        "logs_per_request": workload.batch,
        "gzip": workload.gzip,
        "concurrency": plan.connections,
        "processes": plan.processes,
        "iterations": None if plan.requests is None else plan.requests // requests_per_iteration,
        "duration_s": plan.duration,
        "rate_logs_per_s": options.rate,
        "run": workload.run,
        "idempotency_keys": options.idempotency_keys,
    }


@contextmanager
def open_target(
    options: BenchOptions, settings: Mapping[str, str] | None = None
) -> Iterator[Target]:
    """The server given by `--url`, or a stack started for this run (with these settings)."""
    if options.url is None:
        kind = options.spawn or "embedded"
        with spawn_stack(
            kind,
            workers=options.workers,
            worker_processes=options.worker_processes,
            settings={**stack_settings(options), **(settings or {})},
            hold_worker=options.hold_worker,
        ) as target:
            yield target
        return
    yield Target(
        url=options.url.rstrip("/"),
        description=options.url,
        components=lambda: {"server": list(options.server_pids)},
        open_store=given_store(options),
    )


def stack_settings(options: BenchOptions) -> dict[str, str]:
    """The fleetlog settings a spawned stack gets from the command line's options."""
    settings = {"stream_shards": options.shards, "redis_min_replica_acks": options.min_replica_acks}
    return {name: str(value) for name, value in settings.items() if value is not None}


def given_store(options: BenchOptions) -> Callable[[], Coroutine[Any, Any, StoredLogs]] | None:
    """How to read the store behind `--url`, if the user said where it is."""
    database_url, data_dir = options.database_url, options.data_dir
    if database_url is not None:
        return lambda: PostgresLogs.connect(database_url)
    if data_dir is not None:
        sqlite_path = Settings(_env_file=None, data_dir=data_dir).sqlite_path

        async def open_sqlite() -> StoredLogs:
            return SqliteLogs(sqlite_path)

        return open_sqlite
    return None


def load_with_progress(plan: LoadPlan, console: Console) -> LoadResult:
    """Run the load behind a progress bar (logs answered, or seconds in a `--duration` run)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[logs]:>12,} logs"),
        TimeElapsedColumn(),
    )
    timed = plan.requests is None
    total = plan.duration if timed else plan.requests * plan.workload.batch  # type: ignore[operator]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("sending", total=total, logs=0)
        started = time.monotonic()

        def advance(logs: int) -> None:
            done = time.monotonic() - started if timed else logs
            progress.update(task, completed=done, logs=logs)

        return run_load(plan, advance)


def acked_ranges(plan: LoadPlan, load: LoadResult) -> list[range]:
    """The log ranges of every request that got a 2xx."""
    acked = []
    for shard, report in enumerate(load.shards):
        failed = set(report.failed)
        for k in range(report.sent):
            number = k * plan.processes + shard
            if number not in failed:
                acked.append(plan.workload.log_range(number))
    return acked


def release_worker(
    held: HeldWorker, *, used_memory_before: int, load: LoadResult, console: Console
) -> BacklogMemory:
    """Read Redis while it holds every log the load got accepted, then start the worker."""
    used_memory_after = held.redis_used_memory()
    console.print("load done, Redis memory read: starting the held worker …")
    held.start()
    logs = sum(shard.logs_acked for shard in load.shards)
    return backlog_memory(logs=logs, before=used_memory_before, after=used_memory_after)


def run_bench(options: BenchOptions, console: Console) -> Summary:
    """Run the bench as asked; progress and notes go to `console`."""
    with open_target(options) as target, asyncio.Runner() as runner:
        workload = build_workload(options)
        plan = build_plan(options, target.url, workload)
        console.print(f"[bold]fleetlog bench[/] {workload.name} workload → {target.description}")
        # Opened before the load, so the first look at the store follows the last answer at once.
        store = None if target.open_store is None else runner.run(target.open_store())
        held, backlog = target.held_worker, None
        try:
            cpu = CpuClock(target.components)
            used_memory_before = 0 if held is None else held.redis_used_memory()
            load = load_with_progress(plan, console)
            if held is not None:
                backlog = release_worker(
                    held, used_memory_before=used_memory_before, load=load, console=console
                )
                cpu.start_late()
            delivery = None
            if store is not None:
                console.print("waiting for every accepted log to be stored …")
                acked = acked_ranges(plan, load)
                settle_s = options.settle_timeout
                delivery = runner.run(verify(store, workload, acked, settle_s=settle_s))
            server_cpu = cpu.elapsed()
        finally:
            if store is not None:
                runner.run(store.close())
    return summarize(
        workload=describe(plan, workload, options),
        target=target.description,
        shards=load.shards,
        load_cpu_s=load.parent_cpu_s + sum(shard.cpu_s for shard in load.shards),
        delivery=delivery,
        server_cpu=server_cpu,
        backlog=backlog,
    )
