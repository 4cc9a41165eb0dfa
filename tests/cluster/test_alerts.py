"""Alerts on a Redis Cluster: refused, saying why (dramatiq's broker cannot use a cluster)."""

from pathlib import Path

import pytest

from fleetlog.alerts.runtime import ON_CLUSTER, running_alerts
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import pipeline_settings

pytestmark = pytest.mark.cluster

RULE = {"name": "errors", "query": "level>=error", "window": "5m", "threshold": 10}


async def test_rules_are_refused_and_the_worker_runs_no_evaluator(
    cluster_url: str, pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = pipeline_settings(cluster_url, pg_url, tmp_path, redis_cluster=True)
    async with running_app(settings) as app, client_of(app) as http:
        refused = await http.post("/api/alerts/rules", json=RULE)
    assert refused.status_code == 409
    assert refused.json()["error"] == "alerts_need_redis"
    assert "Redis Cluster" in refused.json()["message"]

    async with running_alerts(settings) as evaluator:
        assert evaluator is None
    assert ON_CLUSTER in caplog.text
