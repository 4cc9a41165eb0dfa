"""`fleetlog bench` as users run it, small enough for every test run: so the tool cannot rot."""

import pytest

from tests.bench.runs import assert_exactly_once, run_bench


def test_embedded_run_stores_every_accepted_log_once():
    summary = run_bench(
        "--spawn", "embedded", "--workers", "1", "--iterations", "1", "--devices", "3"
    )
    assert_exactly_once(summary)
    assert summary["workload"]["name"] == "reference"
    assert summary["logs_acked"] == 300
    assert summary["accepted_logs_per_s"] > 0
    assert summary["persisted_logs_per_s"] > 0
    assert summary["cpu_by_component"].keys() == {"api"}
    assert summary["cpu_by_component"]["api"]["cpu_s"] == pytest.approx(
        summary["server_cpu_s"], abs=0.01
    )
    assert summary["redis_backlog"] is None


def test_open_loop_run_against_the_bare_ceiling():
    summary = run_bench(
        "--spawn",
        "bare",
        "--workers",
        "1",
        "--duration",
        "1",
        "--rate",
        "1000",
        "--concurrency",
        "8",
    )
    assert summary["workload"]["rate_logs_per_s"] == 1000
    assert 0 < summary["logs_acked"] <= 1000
    assert summary["errors"] == {}
    assert summary["lost"] is None
    assert summary["persisted_logs_per_s"] is None
