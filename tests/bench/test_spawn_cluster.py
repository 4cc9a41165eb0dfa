"""`fleetlog bench --spawn cluster`: API processes and workers on a private Redis Cluster."""

import pytest
from typer.testing import CliRunner

from fleetlog.cli import app
from tests.bench.runs import assert_exactly_once, run_bench


@pytest.mark.cluster
def test_cluster_run_stores_every_accepted_log_once_and_splits_the_cpu():
    summary = run_bench(
        "--spawn",
        "cluster",
        "--workers",
        "1",
        "--worker-processes",
        "2",
        "--shards",
        "3",
        "--min-replica-acks",
        "1",
        "--iterations",
        "1",
        "--devices",
        "3",
        "--concurrency",
        "8",
    )
    assert_exactly_once(summary)
    assert summary["logs_acked"] == 300
    assert "2 worker(s), 3 shard(s)" in summary["target"]
    assert "1 replica ack(s) before a 2xx" in summary["target"]
    assert summary["cpu_by_component"].keys() == {"api", "worker", "redis", "postgres"}
    # Six redis-server nodes and two workers did work on the logs.
    assert summary["cpu_by_component"]["redis"]["cpu_s"] > 0
    assert summary["cpu_by_component"]["worker"]["cpu_s"] > 0


@pytest.mark.parametrize(
    "args", [["--spawn", "embedded", "--shards", "8"], ["--worker-processes", "2"]]
)
def test_worker_processes_and_shards_are_a_usage_error_without_a_spawned_pipeline(args):
    answer = CliRunner().invoke(app, ["bench", *args])
    assert answer.exit_code == 2
    assert "--worker-processes and --shards need" in answer.output


def test_replica_acks_are_a_usage_error_without_a_cluster():
    answer = CliRunner().invoke(
        app, ["bench", "--spawn", "redis-postgres", "--min-replica-acks", "1"]
    )
    assert answer.exit_code == 2
    assert "--min-replica-acks needs --spawn cluster" in answer.output
