"""Retention over the admin API: rules managed, previewed and applied by admins only."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fleetlog.auth.principals import Scope
from fleetlog.records import LogRecord
from fleetlog.store.sqlite_writer import SqliteWriter
from tests.fixtures.auth import add_key, bearer, secure_settings, serving
from tests.fixtures.pipeline import retention_passes, wait_for_a_retention_pass

NOW = datetime.now(UTC)


@pytest.fixture
async def admin(tmp_path: Path) -> dict[str, object]:
    settings = secure_settings(tmp_path / "data", retention_days=30)
    keys = {scope: await add_key(settings, scope.value, scope) for scope in Scope}
    return {"settings": settings, "keys": keys}


async def seed(settings, ages_days: list[float], device_id: str = "cam-1") -> None:
    writer = SqliteWriter(settings.sqlite_path, synchronous="NORMAL")
    records = [
        LogRecord(
            device_id=device_id,
            level="DEBUG",
            message=f"aged {age}",
            log_data={},
            ts=NOW - timedelta(days=age),
            received_at=NOW - timedelta(days=age),
        )
        for age in ages_days
    ]
    await writer.insert_batch(records)
    await writer.close()


class TestRules:
    async def test_rules_are_added_listed_changed_and_removed(self, admin) -> None:
        headers = bearer(admin["keys"][Scope.ADMIN])
        async with serving(admin["settings"]) as http:
            added = await http.post(
                "/api/retention/rules",
                json={"log_level": "debug", "days": 2},
                headers=headers,
            )
            assert added.status_code == 201, added.text
            rule = added.json()
            assert (rule["log_level"], rule["device_prefix"], rule["days"]) == ("DEBUG", None, 2)
            listed = (await http.get("/api/retention/rules", headers=headers)).json()
            assert [r["id"] for r in listed["rules"]] == [rule["id"]]
            assert [(r["id"], r["days"]) for r in listed["effective"]] == [
                (rule["id"], 2),
                (None, 30),
            ]
            changed = await http.put(
                f"/api/retention/rules/{rule['id']}",
                json={"device_prefix": "test-", "days": 1},
                headers=headers,
            )
            assert changed.json()["device_prefix"] == "test-"
            removed = await http.delete(f"/api/retention/rules/{rule['id']}", headers=headers)
            assert removed.json()["id"] == rule["id"]
            gone = await http.delete(f"/api/retention/rules/{rule['id']}", headers=headers)
            assert gone.status_code == 404
            assert gone.json()["error"] == "not_found"

    async def test_one_rule_per_level_and_prefix(self, admin) -> None:
        headers = bearer(admin["keys"][Scope.ADMIN])
        async with serving(admin["settings"]) as http:
            for expected in (201, 409):
                answer = await http.post("/api/retention/rules", json={"days": 40}, headers=headers)
                assert answer.status_code == expected, answer.text
            assert answer.json()["detail"][0]["rule"] == "unique"

    @pytest.mark.parametrize(
        ("body", "field", "rule"),
        [
            ({"days": 0}, "days", "greater_than_equal"),
            ({}, "days", "missing"),
            ({"days": 1, "log_level": "LOUD"}, "log_level", "enum"),
            ({"days": 1, "device_prefix": ""}, "device_prefix", "string_too_short"),
        ],
    )
    async def test_a_bad_rule_is_a_422_naming_the_field(self, admin, body, field, rule) -> None:
        async with serving(admin["settings"]) as http:
            answer = await http.post(
                "/api/retention/rules", json=body, headers=bearer(admin["keys"][Scope.ADMIN])
            )
        assert answer.status_code == 422
        assert (answer.json()["detail"][0]["field"], answer.json()["detail"][0]["rule"]) == (
            field,
            rule,
        )

    @pytest.mark.parametrize("scope", [Scope.READ, Scope.INGEST])
    async def test_only_admins_manage_retention(self, admin, scope) -> None:
        headers = bearer(admin["keys"][scope])
        async with serving(admin["settings"]) as http:
            for method, path in [
                ("GET", "/api/retention/rules"),
                ("POST", "/api/retention/rules"),
                ("PUT", "/api/retention/rules/1"),
                ("DELETE", "/api/retention/rules/1"),
                ("GET", "/api/retention/preview"),
                ("POST", "/api/retention/apply"),
            ]:
                answer = await http.request(method, path, json={"days": 1}, headers=headers)
                assert answer.status_code == 403, (method, path)


async def test_preview_then_apply(admin) -> None:
    settings = admin["settings"]
    headers = bearer(admin["keys"][Scope.ADMIN])
    before = retention_passes()
    async with serving(settings) as http:
        # The server's own pass at start goes first, so it cannot take the seeded logs.
        await wait_for_a_retention_pass(before)
        await seed(settings, [0.5, 3, 3.5, 50])
        await http.post(
            "/api/retention/rules", json={"log_level": "DEBUG", "days": 2}, headers=headers
        )
        preview = (await http.get("/api/retention/preview", headers=headers)).json()
        applied = await apply_now(http, headers)
        assert applied["rules"] == preview["rules"]
        assert [(tally["rule"]["days"], tally["rows"]) for tally in applied["rules"]] == [
            (2, 3),
            (30, 0),
        ]
        gone_days = {(NOW - timedelta(days=age)).date() for age in (3, 3.5, 50)}
        assert applied["rules"][0]["days"] == len(gone_days)
        left = (await http.get("/api/logs/cam-1", headers=headers)).json()["data"]
        assert [log["message"] for log in left] == ["aged 0.5"]


async def apply_now(http: httpx.AsyncClient, headers: dict[str, str]) -> dict:
    """A pass, once the one the server runs as it starts is done (409 meanwhile)."""
    while True:
        answer = await http.post("/api/retention/apply", headers=headers)
        if answer.status_code != 409:
            assert answer.status_code == 200, answer.text
            return answer.json()
