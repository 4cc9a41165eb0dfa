"""`fleetlog bench` as users run it, small enough for every test run: so the tool cannot rot."""

import json
import subprocess
import sys

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


def bench(*args):
    result = subprocess.run(
        [sys.executable, "-m", "fleetlog", "bench", "--json", "--workers", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_run_stores_every_accepted_log_once():
    summary = bench("--spawn", "embedded", "--iterations", "1", "--devices", "3")
    assert STABLE_KEYS <= summary.keys()
    assert summary["workload"]["name"] == "reference"
    assert summary["logs_acked"] == 300
    assert summary["errors"] == {}
    assert summary["accepted_logs_per_s"] > 0
    assert summary["persisted_logs_per_s"] > 0
    assert summary["lost"] == 0
    assert summary["duplicated"] == 0
    assert summary["stored_unacknowledged"] == 0
    assert summary["server_cpu_s"] is not None


def test_open_loop_run_against_the_bare_ceiling():
    summary = bench("--spawn", "bare", "--duration", "1", "--rate", "1000", "--concurrency", "8")
    assert summary["workload"]["rate_logs_per_s"] == 1000
    assert 0 < summary["logs_acked"] <= 1000
    assert summary["errors"] == {}
    assert summary["lost"] is None
    assert summary["persisted_logs_per_s"] is None
