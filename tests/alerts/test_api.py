"""The alerts API: rules and targets (admin), the alerts (read), the job queue (admin)."""

import re
from datetime import timedelta

import pytest

from fleetlog.auth.principals import Scope
from tests.fixtures.app import client_of, migrated, running_app
from tests.fixtures.auth import add_key, bearer, secure_settings, serving

RULE = {"name": "errors", "query": "level>=error", "window": "5m", "threshold": 10}


@pytest.fixture
async def settings(tmp_path, redis_url):
    """Embedded with Redis: the server evaluates alerts itself."""
    return await migrated(
        secure_settings(tmp_path / "data", redis_url=redis_url, alert_interval=timedelta(hours=1))
    )


@pytest.fixture
async def client(settings):
    async with running_app(settings) as app, client_of(app) as http:
        yield http


def problems(answer) -> list[tuple[str, str]]:
    return [(each["field"], each["rule"]) for each in answer.json()["detail"]]


async def test_targets_show_their_secret_once(client):
    created = await client.post("/api/alerts/targets", json={"name": "ops", "url": "http://x/h"})
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    assert created.json()["format"] == "alertmanager"
    listed = (await client.get("/api/alerts/targets")).json()
    assert [target["name"] for target in listed] == ["ops"]
    assert "secret" not in listed[0]
    again = await client.post("/api/alerts/targets", json={"name": "ops", "url": "http://x/h"})
    assert again.status_code == 409


async def test_rules_are_created_shown_replaced_and_removed(client):
    await client.post("/api/alerts/targets", json={"name": "ops", "url": "https://x/h"})
    created = await client.post("/api/alerts/rules", json={**RULE, "targets": ["ops"]})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["window"], rule["for"], rule["comparison"], rule["targets"]) == (
        300,
        0,
        ">",
        ["ops"],
    )
    assert (await client.post("/api/alerts/rules", json=RULE)).status_code == 409
    replaced = await client.put(
        "/api/alerts/rules/errors", json={**RULE, "for": "PT2M", "group_by": "device"}
    )
    assert (replaced.json()["for"], replaced.json()["targets"]) == (120, [])
    assert (await client.get("/api/alerts/rules/errors")).json()["group_by"] == "device"
    assert (await client.delete("/api/alerts/targets/ops")).status_code == 204
    assert (await client.delete("/api/alerts/rules/errors")).status_code == 204
    assert (await client.get("/api/alerts/rules/errors")).status_code == 404
    assert (await client.get("/api/alerts/rules")).json() == []


async def test_a_target_in_use_is_kept(client):
    await client.post("/api/alerts/targets", json={"name": "ops", "url": "https://x/h"})
    await client.post("/api/alerts/rules", json={**RULE, "targets": ["ops"]})
    refused = await client.delete("/api/alerts/targets/ops")
    assert refused.status_code == 409
    assert "errors" in refused.json()["message"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({**RULE, "window": 90}, ("window", "whole_minutes")),
        ({**RULE, "window": "2d"}, ("window", "max_window")),
        ({**RULE, "query": "level>=loud"}, ("query", "level")),
        ({**RULE, "query": "(pump"}, ("query", "syntax")),
        ({**RULE, "for": -60}, ("for", "for_range")),
        ({**RULE, "comparison": "~"}, ("comparison", "literal_error")),
        ({**RULE, "kind": "silence", "query": "pump"}, ("query", "devices_only")),
        ({**RULE, "kind": "silence", "group_by": "level"}, ("group_by", "silence_group")),
        ({**RULE, "targets": ["nobody"]}, ("targets[0]", "unknown_target")),
        ({**RULE, "targets": ["a", "a"]}, ("targets", "unique")),
        ({**RULE, "extra": 1}, ("extra", "extra_forbidden")),
    ],
)
async def test_a_bad_rule_is_refused_naming_its_field_and_rule(client, body, problem):
    refused = await client.post("/api/alerts/rules", json=body)
    assert refused.status_code == 422, refused.text
    assert problem in problems(refused)


@pytest.mark.parametrize(
    ("url", "rule"),
    [("ftp://x", "string_pattern_mismatch"), ("https://x/\x00", "no_nul")],
)
async def test_a_bad_target_is_refused(client, url, rule):
    refused = await client.post("/api/alerts/targets", json={"name": "ops", "url": url})
    assert refused.status_code == 422
    assert problems(refused) == [("url", rule)]


async def test_the_schema_states_every_rule_of_a_targets_url(client):
    document = (await client.get("/openapi.json")).json()
    pattern = re.compile(
        document["components"]["schemas"]["TargetIn"]["properties"]["url"]["pattern"]
    )
    assert pattern.search("https://hooks.example/x")
    assert not pattern.search("https://hooks.example/\x00")
    assert not pattern.search("ftp://x")


async def test_alerts_and_jobs_are_listed(client):
    alerts = await client.get("/api/alerts")
    assert alerts.json() == {"evaluated": True, "alerts": [], "history": []}
    jobs = (await client.get("/api/admin/jobs")).json()
    assert [(queue["name"], queue["dead"]) for queue in jobs["queues"]] == [("webhooks", 0)]


async def test_readers_see_alerts_and_admins_manage_rules(settings):
    reader = await add_key(settings, "reader", Scope.READ)
    async with serving(settings) as http:
        assert (await http.get("/api/alerts", headers=bearer(reader))).status_code == 200
        refused = await http.post("/api/alerts/rules", json=RULE, headers=bearer(reader))
        assert refused.status_code == 403
        assert (await http.get("/api/admin/jobs", headers=bearer(reader))).status_code == 403
        assert (await http.get("/api/alerts")).status_code == 401


async def test_without_redis_rules_are_refused_as_never_evaluated(tmp_path):
    settings = await migrated(secure_settings(tmp_path / "data"))
    async with running_app(settings) as app, client_of(app) as http:
        refused = await http.post("/api/alerts/rules", json=RULE)
        assert refused.status_code == 409
        assert refused.json()["error"] == "alerts_need_redis"
        assert (await http.get("/api/alerts")).json()["evaluated"] is False
