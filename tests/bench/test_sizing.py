"""The bench's sizing figures: server CPU by component, Redis memory per backlogged log."""

import pytest
from typer.testing import CliRunner

from fleetlog.cli import app
from tests.bench.runs import assert_exactly_once, run_bench


def test_held_worker_run_reports_cpu_by_component_and_redis_memory_per_log():
    summary = run_bench(
        "--spawn",
        "redis-postgres",
        "--hold-worker",
        "--workers",
        "1",
        "--iterations",
        "1",
        "--devices",
        "40",
    )
    assert_exactly_once(summary)
    components = summary["cpu_by_component"]
    assert components.keys() == {"api", "worker", "redis", "postgres"}
    # The components are disjoint trees of the server: they add up to its total, to rounding.
    total = sum(component["cpu_s"] for component in components.values())
    assert total == pytest.approx(summary["server_cpu_s"], abs=0.01)
    for name, component in components.items():
        assert component["cpu_s"] > 0, name
        # Both are rounded: cpu_s to the ms, 0.125 µs over 4,000 logs, us_per_log to 0.01 µs.
        per_log = pytest.approx(component["cpu_s"] * 1e6 / 4000, abs=0.14)
        assert component["us_per_log"] == per_log, name
        per_core = pytest.approx(1e6 / component["us_per_log"], rel=1e-3)
        assert component["logs_per_s_per_core"] == per_core, name
    backlog = summary["redis_backlog"]
    assert backlog["logs"] == summary["logs_acked"] == 4000
    assert backlog["used_memory_after_bytes"] > backlog["used_memory_before_bytes"]
    assert backlog["bytes_per_log"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["--spawn", "embedded"],
        ["--url", "http://127.0.0.1:9"],
        ["--spawn", "redis-postgres", "--workload", "query"],
    ],
)
def test_hold_worker_is_a_usage_error_without_a_spawned_worker(args):
    answer = CliRunner().invoke(app, ["bench", "--hold-worker", *args])
    assert answer.exit_code == 2
    assert "--hold-worker needs --spawn redis-postgres" in answer.output
