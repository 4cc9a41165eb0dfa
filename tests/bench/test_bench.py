"""Full-size bench runs (`pytest -m bench`): every workload on every stack, exactly once.

They assert correctness only, never time; the figures go to docs/benchmarks.md.
"""

import pytest

from tests.bench.runs import assert_exactly_once, run_bench
from tests.fixtures.process import running_server

pytestmark = pytest.mark.bench

STACKS = ["embedded", "redis-postgres"]


@pytest.mark.parametrize("stack", STACKS)
def test_reference_workload(stack):
    summary = run_bench("--spawn", stack, timeout=900)
    assert_exactly_once(summary)
    assert summary["logs_acked"] == 100_000


@pytest.mark.parametrize("stack", STACKS)
def test_bulk_workload(stack):
    summary = run_bench("--spawn", stack, "--workload", "bulk", timeout=900)
    assert_exactly_once(summary)
    assert summary["workload"]["gzip"] is True


def test_sustained_open_loop_with_several_load_processes():
    summary = run_bench(
        "--spawn", "embedded", "--duration", "10", "--rate", "2000", "--processes", "2"
    )
    assert_exactly_once(summary)
    assert summary["workload"]["processes"] == 2


def test_a_running_server_given_by_url(tmp_path):
    data_dir = tmp_path / "data"
    with running_server(data_dir, workers=2) as server:
        assert server.proc is not None
        summary = run_bench(
            "--url", server.url, "--data-dir", str(data_dir), "--server-pid", str(server.proc.pid)
        )
    assert_exactly_once(summary)
    assert summary["server_cpu_s"] > 0
