"""`fleetlog bench`: the reference's stress test (or a bulk one) against a fleetlog server."""

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer
from rich.console import Console

from fleetlog.bench.loadgen import LoadError
from fleetlog.bench.query_bench import QueryOptions, render_query, run_query_bench
from fleetlog.bench.report import Summary, render
from fleetlog.bench.runner import BenchError, BenchOptions, run_bench
from fleetlog.bench.seeding import SeedingError
from fleetlog.bench.spawn import StackKind
from fleetlog.localstack import ServerError

PIPELINE_STACKS = ("redis-postgres", "cluster")
BenchWorkload = Literal["reference", "bulk", "otlp", "loki", "es-bulk", "query"]

stderr = Console(stderr=True)
stdout = Console()


def bench(
    workload: Annotated[
        BenchWorkload,
        typer.Option(
            help="reference: 5 logs per request; bulk: 1,000, gzipped; otlp, loki, es-bulk: the"
            " bulk logs as shippers send them (docs/protocols.md);"
            " query: seed --logs logs, time searches and visibility"
        ),
    ] = "reference",
    iterations: Annotated[
        int | None, typer.Option(help="Rounds of 100 logs per device (default 10, bulk 30)", min=1)
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Send for this many seconds instead", min=0.1)
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Open loop: offer this many logs/s, whatever happens"
            " (query: the ingest beside the visibility probe, default 10,000)",
            min=1.0,
        ),
    ] = None,
    devices: Annotated[int | None, typer.Option(help="Devices (default 100)", min=1)] = None,
    batch: Annotated[
        int | None, typer.Option(help="Logs per request (default 5, bulk 1000)", min=1, max=1000)
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Connections (default 200, bulk 16, query 8)", min=1)
    ] = None,
    processes: Annotated[int, typer.Option(help="Load generator processes", min=1)] = 1,
    url: Annotated[str | None, typer.Option(help="Load this running server")] = None,
    spawn: Annotated[
        StackKind | None, typer.Option(help="Start this stack for the run (default embedded)")
    ] = None,
    workers: Annotated[int, typer.Option(help="Server processes of a spawned stack", min=1)] = 2,
    worker_processes: Annotated[
        int,
        typer.Option(help="--spawn redis-postgres or cluster: `fleetlog worker` processes", min=1),
    ] = 1,
    shards: Annotated[
        int | None,
        typer.Option(
            help="--spawn redis-postgres or cluster: stream shards (FLEETLOG_STREAM_SHARDS)",
            min=1,
            max=1024,
        ),
    ] = None,
    min_replica_acks: Annotated[
        int | None,
        typer.Option(
            help="--spawn cluster: replicas that must have each log before its 2xx"
            " (FLEETLOG_REDIS_MIN_REPLICA_ACKS), to measure what WAIT costs",
            min=0,
            max=1,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="With --url: the server's data dir (end-to-end check)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="With --url: its PostgreSQL (end-to-end check)")
    ] = None,
    server_pid: Annotated[
        list[int] | None, typer.Option(help="With --url: server process ids, for its CPU time")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="Sent as X-API-Key")] = None,
    settle_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for accepted logs to be stored", min=0)
    ] = 60.0,
    logs: Annotated[int, typer.Option(help="query: logs to seed", min=1000)] = 100_000,
    runs: Annotated[int, typer.Option(help="query: measured runs of each query", min=1)] = 50,
    markers: Annotated[int, typer.Option(help="query: visibility markers", min=1)] = 200,
    idempotency_keys: Annotated[
        bool,
        typer.Option(
            help="Send an Idempotency-Key with each request and send it again, with its key,"
            " after a 503, a 409 or a lost connection (a server restart is waited for)"
        ),
    ] = False,
    hold_worker: Annotated[
        bool,
        typer.Option(
            help="--spawn redis-postgres: start the worker only once the load ends, to measure"
            " the Redis memory a backlogged log takes; then store and check them as usual"
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary")] = False,
) -> None:
    """Load a fleetlog server, then check every accepted log was stored exactly once; or, with
    `--workload query`, seed it with a fleet's week and time searches."""
    if url is not None and spawn is not None:
        raise typer.BadParameter("give --url or --spawn, not both")
    if spawn == "bare" and workload not in ("reference", "bulk"):
        raise typer.BadParameter(
            f"--workload {workload} needs a fleetlog server, not the bare ceiling"
        )
    if hold_worker and (spawn != "redis-postgres" or workload == "query"):
        raise typer.BadParameter(
            "--hold-worker needs --spawn redis-postgres and an ingest workload: only that stack"
            " has a worker the bench starts, and a Redis that holds the backlog"
        )
    if (worker_processes != 1 or shards is not None) and spawn not in PIPELINE_STACKS:
        raise typer.BadParameter(
            "--worker-processes and --shards need --spawn redis-postgres or cluster: only those"
            " stacks have workers and Redis streams that the bench starts"
        )
    if min_replica_acks is not None and spawn != "cluster":
        raise typer.BadParameter("--min-replica-acks needs --spawn cluster: its masters' replicas")
    if workload == "query":
        check_query_options(iterations, duration, devices, batch)
    options = BenchOptions(
        workload="reference" if workload == "query" else workload,
        iterations=iterations,
        duration=duration,
        rate=rate,
        devices=devices,
        batch=batch,
        concurrency=concurrency,
        processes=processes,
        url=url,
        spawn=spawn,
        workers=workers,
        worker_processes=worker_processes,
        shards=shards,
        min_replica_acks=min_replica_acks,
        data_dir=data_dir,
        database_url=database_url,
        server_pids=server_pid or (),
        api_key=api_key,
        settle_timeout=settle_timeout,
        idempotency_keys=idempotency_keys,
        hold_worker=hold_worker,
    )
    # A terminated bench unwinds normally, so the stack it started is stopped and removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        if workload == "query":
            query = QueryOptions(
                logs=logs,
                runs=runs,
                markers=markers,
                ingest_rate=rate or QueryOptions.ingest_rate,
                connections=concurrency or QueryOptions.connections,
            )
            show_query(run_query_bench(options, query, stderr), as_json=as_json)
        else:
            show(run_bench(options, stderr), as_json=as_json)
    except (BenchError, LoadError, ServerError, SeedingError, httpx.HTTPError) as exc:
        stderr.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def check_query_options(*ingest_only: float | None) -> None:
    if any(value is not None for value in ingest_only):
        raise typer.BadParameter(
            "--workload query seeds --logs logs: no --iterations, --duration, --devices or --batch"
        )


def show(summary: Summary, *, as_json: bool) -> None:
    if as_json:
        stdout.out(json.dumps(summary.as_json()), highlight=False)
    else:
        render(summary, stdout)


def show_query(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        stdout.out(json.dumps(summary), highlight=False)
    else:
        render_query(summary, stdout)
