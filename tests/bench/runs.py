"""`fleetlog bench --json` as a real subprocess, the way people and CI run it."""

import json
import subprocess
import sys
from typing import Any

STABLE_KEYS = {
    "workload",
    "accepted_logs_per_s",
    "requests_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "errors",
    "persisted_logs_per_s",
    "lost",
    "duplicated",
    "load_generator_cpu_s",
    "server_cpu_s",
}


def run_bench(*args: str, timeout: float = 120) -> dict[str, Any]:
    """The JSON summary of one bench run; a failed run fails the test with its output."""
    result = subprocess.run(
        [sys.executable, "-m", "fleetlog", "bench", "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def assert_exactly_once(summary: dict[str, Any]) -> None:
    """Every acknowledged log stored once, nothing refused stored; only backpressure refused."""
    assert STABLE_KEYS <= summary.keys()
    outcome = {key: summary[key] for key in ("lost", "duplicated", "stored_unacknowledged")}
    assert outcome == {"lost": 0, "duplicated": 0, "stored_unacknowledged": 0}, summary
    # 503 + Retry-After is the contract's answer to a backlog over its cap: allowed, not hidden.
    assert summary["errors"].keys() <= {"503"}, summary
    assert summary["logs_acked"] > 0
