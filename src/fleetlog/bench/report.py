"""The summary of a bench run: one JSON object with stable keys, or a table for people."""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from fleetlog.bench.loadgen import ShardReport
from fleetlog.bench.verify import Delivery


@dataclass(frozen=True, kw_only=True)
class ComponentCpu:
    """A component's CPU in the run, per log and as the logs/s one core of it would keep up."""

    cpu_s: float
    us_per_log: float | None
    logs_per_s_per_core: float | None


@dataclass(frozen=True, kw_only=True)
class BacklogMemory:
    """Redis `used_memory` before the load and at its end, when every accepted log waited."""

    logs: int
    used_memory_before_bytes: int
    used_memory_after_bytes: int
    bytes_per_log: float
    mib_per_million_logs: float


@dataclass(frozen=True, kw_only=True)
class Summary:
    """The JSON keys of `fleetlog bench --json`; the first thirteen are the stable contract."""

    workload: dict[str, Any]
    accepted_logs_per_s: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    persisted_logs_per_s: float | None
    lost: int | None
    duplicated: int | None
    load_generator_cpu_s: float
    server_cpu_s: float | None
    target: str
    requests: int
    logs_acked: int
    load_s: float
    stored_unacknowledged: int | None
    cpu_by_component: dict[str, ComponentCpu] | None
    redis_backlog: BacklogMemory | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    return ordered[max(math.ceil(share / 100 * len(ordered)) - 1, 0)]


def component_cpu(seconds: float, logs: int) -> ComponentCpu:
    us_per_log = seconds * 1e6 / logs if logs > 0 else None
    return ComponentCpu(
        cpu_s=round(seconds, 3),
        us_per_log=None if us_per_log is None else round(us_per_log, 2),
        logs_per_s_per_core=round(1e6 / us_per_log) if us_per_log else None,
    )


def backlog_memory(*, logs: int, before: int, after: int) -> BacklogMemory:
    bytes_per_log = (after - before) / logs if logs > 0 else 0.0
    return BacklogMemory(
        logs=logs,
        used_memory_before_bytes=before,
        used_memory_after_bytes=after,
        bytes_per_log=round(bytes_per_log, 1),
        mib_per_million_logs=round(bytes_per_log * 1e6 / 2**20, 1),
    )


def summarize(
    *,
    workload: dict[str, Any],
    target: str,
    shards: list[ShardReport],
    load_cpu_s: float,
    delivery: Delivery | None,
    server_cpu: dict[str, float] | None,
    backlog: BacklogMemory | None = None,
) -> Summary:
    """`server_cpu`: CPU seconds by component, None when the server's processes are unknown."""
    latencies = sorted(latency for shard in shards for latency in shard.latencies)
    statuses: Counter[str] = Counter()
    for shard in shards:
        statuses.update(shard.statuses)
    first_send = min(shard.first_send for shard in shards)
    load_s = max(shard.last_answer for shard in shards) - first_send
    logs_acked = sum(shard.logs_acked for shard in shards)
    requests = sum(statuses.values())

    # Per log stored, or per log accepted where the bench cannot see the store (bare, --url).
    logs = logs_acked if delivery is None else delivery.stored

    def ms(share: float) -> float:
        return round(percentile(latencies, share) * 1000, 2)

    return Summary(
        workload=workload,
        accepted_logs_per_s=round(logs_acked / load_s, 1) if load_s > 0 else 0.0,
        requests_per_s=round(requests / load_s, 1) if load_s > 0 else 0.0,
        p50_ms=ms(50),
        p95_ms=ms(95),
        p99_ms=ms(99),
        max_ms=ms(100),
        errors={status: n for status, n in sorted(statuses.items()) if not status.startswith("2")},
        persisted_logs_per_s=persisted_rate(delivery, logs_acked, first_send),
        lost=None if delivery is None else delivery.lost,
        duplicated=None if delivery is None else delivery.duplicated,
        load_generator_cpu_s=round(load_cpu_s, 2),
        server_cpu_s=None if server_cpu is None else round(sum(server_cpu.values()), 2),
        target=target,
        requests=requests,
        logs_acked=logs_acked,
        load_s=round(load_s, 3),
        stored_unacknowledged=None if delivery is None else delivery.unacknowledged,
        cpu_by_component=None
        if server_cpu is None
        else {name: component_cpu(seconds, logs) for name, seconds in server_cpu.items()},
        redis_backlog=backlog,
    )


def persisted_rate(delivery: Delivery | None, logs_acked: int, first_send: float) -> float | None:
    """Acknowledged logs stored per second, from the first send to the last row seen stored."""
    if delivery is None or delivery.stored_at <= first_send:
        return None
    return round((logs_acked - delivery.lost) / (delivery.stored_at - first_send), 1)


def render(summary: Summary, console: Console) -> None:
    workload = summary.workload
    table = Table(
        title=f"fleetlog bench: {workload['name']} workload against {summary.target}",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("logs accepted", f"{summary.logs_acked:,} in {summary.load_s:.2f} s")
    table.add_row("accepted logs/s", f"{summary.accepted_logs_per_s:,.0f}")
    table.add_row("requests/s", f"{summary.requests_per_s:,.0f}")
    latency = (summary.p50_ms, summary.p95_ms, summary.p99_ms, summary.max_ms)
    table.add_row("latency P50 / P95 / P99 / max", " / ".join(f"{v:.1f}" for v in latency) + " ms")
    errors = ", ".join(f"{status}: {n}" for status, n in summary.errors.items()) or "none"
    table.add_row("errors", errors)
    if summary.lost is None:
        table.add_row("end to end", "not checked (give --data-dir or --database-url)")
    else:
        rate = summary.persisted_logs_per_s
        table.add_row("persisted logs/s", "-" if rate is None else f"{rate:,.0f}")
        table.add_row("lost / duplicated", f"{summary.lost} / {summary.duplicated}")
        table.add_row("stored without a 2xx", str(summary.stored_unacknowledged))
    table.add_row("load generator CPU", f"{summary.load_generator_cpu_s:.2f} s")
    server = summary.server_cpu_s
    table.add_row(
        "server CPU", "unknown (give --server-pid)" if server is None else f"{server:.2f} s"
    )
    for name, cpu in (summary.cpu_by_component or {}).items():
        table.add_row(f"  {name} CPU", describe_cpu(cpu))
    if (backlog := summary.redis_backlog) is not None:
        table.add_row(
            "Redis memory per backlogged log",
            f"{backlog.bytes_per_log:,.0f} B ({backlog.mib_per_million_logs:,.0f} MiB per million)",
        )
    console.print(table)


def describe_cpu(cpu: ComponentCpu) -> str:
    """`1.20 s · 40 µs/log · 25,000 logs/s/core`, shorter when no log was counted."""
    parts = [f"{cpu.cpu_s:.2f} s"]
    if cpu.us_per_log is not None:
        parts.append(f"{cpu.us_per_log:,.0f} µs/log")
    if cpu.logs_per_s_per_core is not None:
        parts.append(f"{cpu.logs_per_s_per_core:,.0f} logs/s/core")
    return " · ".join(parts)
