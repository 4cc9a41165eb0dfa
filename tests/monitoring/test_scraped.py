"""A real Prometheus scrapes a loaded fleetlog (API and worker on the suite's Redis and
PostgreSQL): every panel of the shipped dashboard finds series, every metric the alerts use
is scraped, and no label carries a device id or a raw path."""

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fleetlog.localstack import free_port
from tests.fixtures.pipeline import pipeline_settings, settings_env, worker_process
from tests.fixtures.process import running_server
from tests.fixtures.records import make_batch, make_log
from tests.fixtures.servers import PostgresServer, RedisServer, fresh_database
from tests.monitoring.dashboard import dashboard, panels
from tests.monitoring.prometheus import DEPLOY, Prometheus, running_prometheus, settled

SCRAPE_TIMEOUT_S = 20.0
# What Grafana puts for the dashboard's variables: every shard, and a window that holds a few
# of the test's 1 s scrapes.
VARIABLES = {"$__rate_interval": "15s", "$shard": ".*"}
# Per shard 200 logs of backlog (4 shards): a batch of 500 is refused with 503.
MAX_BACKLOG = 800


@dataclass(frozen=True)
class Scraped:
    prometheus: Prometheus
    devices: list[str]
    path_token: str


def load(url: str, devices: list[str], path_token: str) -> None:
    """Every kind of answer the dashboard shows: logs of each level by each route, cached
    reads, 404 and 422, 401 then 429 (a bad credential), and 503 (the backlog is full)."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for i, device in enumerate(devices):
            level = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")[i % 5]
            ok = client.post("/api/log", json=make_log(device_id=device, log_level=level))
            assert ok.status_code == 200, ok.text
            batch = client.post("/api/logs/batch", json=make_batch(20, device_id=device))
            assert batch.status_code == 200, batch.text
            values = [[str(time.time_ns()), f"line {n}"] for n in range(5)]
            push = {"streams": [{"stream": {"host": device}, "values": values}]}
            assert client.post("/loki/api/v1/push", json=push).status_code == 204
            for _ in range(2):
                assert client.get(f"/api/logs/{device}").status_code == 200
                assert client.get("/api/stats").status_code == 200
            assert client.get(f"/no/such/{path_token}/{device}").status_code == 404
            assert client.get(f"/api/logs/{device}", params={"limit": "x"}).status_code == 422
        bogus = {"Authorization": f"Bearer bogus-{path_token}"}
        statuses = {client.get("/api/stats", headers=bogus).status_code for _ in range(5)}
        assert statuses == {401, 429}
        too_many = client.post("/api/logs/batch", json=make_batch(500))
        assert too_many.status_code == 503, too_many.text


def scrape_config(api_port: int, worker_port: int) -> dict[str, Any]:
    """The shipped jobs and rules, on the test's ports, scraped and evaluated every second."""
    jobs = {"fleetlog-api": api_port, "fleetlog-worker": worker_port}
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in jobs.items()
        ],
    }


@pytest.fixture(scope="module")
def scraped(
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scraped]:
    tmp = tmp_path_factory.mktemp("monitoring")
    redis_server.flushall()
    with fresh_database(postgres_server) as database_url:
        settings = pipeline_settings(
            redis_server.url, database_url, tmp, worker_metrics_port=free_port()
        )
        env = {
            **settings_env(settings),
            "FLEETLOG_MAX_BACKLOG": str(MAX_BACKLOG),
            "FLEETLOG_ADDRESS_BURST": "2",
        }
        token = uuid.uuid4().hex
        devices = [f"monitored-{token[:8]}-{i}" for i in range(10)]
        with (
            running_server(tmp / "data", env=env) as api,
            worker_process(settings, tmp / "worker.log", env=env),
            running_prometheus(
                scrape_config(api.port, settings.worker_metrics_port), workdir=tmp / "prometheus"
            ) as prometheus,
        ):
            load(api.url, devices, token)
            yield Scraped(prometheus, devices, token)


def substituted(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def targets_without_series(prometheus: Prometheus) -> list[str]:
    return [
        f"{panel['title']} [{target['refId']}]: {target['expr']}"
        for panel in panels(dashboard())
        for target in panel["targets"]
        if not prometheus.query(substituted(target["expr"]))
    ]


def test_every_panel_of_the_dashboard_finds_series(scraped: Scraped) -> None:
    missing = settled(lambda: targets_without_series(scraped.prometheus), within=SCRAPE_TIMEOUT_S)
    assert not missing, "panels without series:\n" + "\n".join(missing)


def test_every_metric_the_alerts_use_is_scraped(scraped: Scraped) -> None:
    groups = scraped.prometheus.data("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert all(rule["health"] in ("ok", "unknown") for rule in rules), rules

    def unscraped() -> list[str]:
        known = set(scraped.prometheus.data("/api/v1/label/__name__/values"))
        used = {name for rule in rules for name in re.findall(r"\bfleetlog_\w+", rule["query"])}
        return sorted(used - known)

    missing = settled(unscraped, within=SCRAPE_TIMEOUT_S)
    assert not missing, f"the alerts use metrics fleetlog does not expose: {missing}"


def test_no_label_carries_a_device_id_or_a_raw_path(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    for name in prometheus.data("/api/v1/labels"):
        for value in prometheus.data(f"/api/v1/label/{name}/values"):
            assert scraped.path_token not in value, f"{name}={value!r}"
            assert not any(device in value for device in scraped.devices), f"{name}={value!r}"
    routes = prometheus.data("/api/v1/label/route/values")
    assert "/api/logs/{device_id}" in routes
    assert all(route == "unmatched" or route.startswith("/") for route in routes), routes
