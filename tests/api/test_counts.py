"""GET /api/logs/count and GET /api/devices on the embedded app; /api/stats from the rollups."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from fleetlog.auth.principals import Scope
from tests.fixtures.app import client_of, running_app
from tests.fixtures.auth import add_key, bearer, secure_settings, serving
from tests.fixtures.pipeline import running_worker, wait_for
from tests.fixtures.records import make_log

# Two hours ago, on the hour: every event time these tests send is inside the default window.
BASE = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)


def at(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


# (device, level, minutes after BASE, message)
LOGS = [
    ("cam-1", "INFO", 0.5, "pump started"),
    ("cam-1", "ERROR", 1.0, "pump stuck"),
    ("cam-1", "ERROR", 61.0, "valve stuck"),
    ("cam-2", "WARNING", 5.25, "valve open"),
    ("cam-2", "CRITICAL", 64.0, "pump on fire"),
    ("door-1", "INFO", 30.0, "door open"),
    ("door-1", "DEBUG", 90.0, "door closed"),
]


async def send(client, logs=LOGS, headers=None):
    batch = [
        make_log(device_id=device, log_level=level, timestamp=at(minutes), message=message)
        for device, level, minutes, message in logs
    ]
    answer = await client.post("/api/logs/batch", json={"logs": batch}, headers=headers)
    assert answer.status_code == 200, answer.text


async def counted(client, headers=None, **params):
    answer = await client.get("/api/logs/count", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


class TestCount:
    async def test_hourly_counts_of_the_last_day_by_default(self, client):
        await send(client)
        body = await counted(client)
        assert body == {
            "interval": "1h",
            "group_by": None,
            "buckets": [
                {"start": at(0), "count": 4},
                {"start": at(60), "count": 3},
            ],
        }

    async def test_grouped_by_level_from_the_rollups(self, client):
        await send(client)
        body = await counted(client, q="level>=error", interval="1h", group_by="level")
        assert body["group_by"] == "level"
        assert body["buckets"] == [
            {"start": at(0), "key": "ERROR", "count": 1},
            {"start": at(60), "key": "CRITICAL", "count": 1},
            {"start": at(60), "key": "ERROR", "count": 1},
        ]

    async def test_words_are_counted_by_scanning_in_the_same_buckets(self, client):
        await send(client)
        body = await counted(client, q="pump", interval="5m", group_by="device")
        assert body["buckets"] == [
            {"start": at(0), "key": "cam-1", "count": 2},
            {"start": at(60), "key": "cam-2", "count": 1},
        ]

    async def test_the_range_widens_to_whole_buckets(self, client):
        await send(client)
        params = {"since": at(0.75), "until": at(1.5), "interval": "1m"}
        body = await counted(client, q="device:cam-1", **params)
        assert body["buckets"] == [{"start": at(0), "count": 1}, {"start": at(1), "count": 1}]
        assert (await counted(client, q="pump", **params))["buckets"] == body["buckets"]

    async def test_not_taken_for_a_device_named_count(self, client):
        await send(client, [("count", "INFO", 1, "m")])
        body = await counted(client)
        assert body["buckets"] == [{"start": at(0), "count": 1}]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "9999-12-31T12:00:00Z", "until": "9999-12-31T23:00:00Z", "interval": "1d"},
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00:00Z", "interval": "1m"},
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00:00Z", "q": "pump"},
    ],
)
async def test_the_ends_of_time_are_answered(client, params):
    await send(client)
    assert (await counted(client, **params))["buckets"] == []


class TestBadCount:
    async def test_too_many_buckets_names_the_interval(self, client):
        answer = await client.get("/api/logs/count", params={"since": "30d", "interval": "1m"})
        assert answer.status_code == 400
        assert answer.json()["detail"][0]["field"] == "interval"
        assert answer.json()["detail"][0]["rule"] == "max_buckets"

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"interval": "2m"}, "interval"),
            ({"group_by": "message"}, "group_by"),
            ({"q": "level:loud"}, "q"),
            ({"q": "(pump"}, "q"),
            ({"q": "device:cam\x00"}, "q"),
            ({"since": "yesterday"}, "since"),
            ({"since": "1h", "until": "2h"}, "until"),
        ],
    )
    async def test_a_bad_parameter_is_named(self, client, params, field):
        answer = await client.get("/api/logs/count", params=params)
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["detail"][0]["field"] == field


class TestDevices:
    async def test_every_device_with_its_counts_in_the_window(self, client):
        await send(client)
        body = (await client.get("/api/devices")).json()
        assert [row["device_id"] for row in body["data"]] == ["cam-1", "cam-2", "door-1"]
        cam = body["data"][0]
        assert cam["total"] == 3
        assert cam["counts"] == {"DEBUG": 0, "INFO": 1, "WARNING": 0, "ERROR": 2, "CRITICAL": 0}
        assert 0 <= cam["silent_for_s"] < 60
        assert "next_cursor" not in body

    async def test_the_window_leaves_older_logs_out_but_keeps_the_device(self, client):
        await send(client)
        body = (await client.get("/api/devices", params={"since": at(60)})).json()
        totals = {row["device_id"]: row["total"] for row in body["data"]}
        assert totals == {"cam-1": 1, "cam-2": 1, "door-1": 1}

    @pytest.mark.parametrize(
        ("sort", "order", "devices"),
        [
            ("device", "desc", ["door-1", "cam-2", "cam-1"]),
            ("total", "desc", ["cam-1", "cam-2", "door-1"]),
            ("errors", "desc", ["cam-1", "cam-2", "door-1"]),
            ("errors", "asc", ["door-1", "cam-2", "cam-1"]),
        ],
    )
    async def test_sorted(self, client, sort, order, devices):
        await send(client)
        body = (await client.get("/api/devices", params={"sort": sort, "order": order})).json()
        assert [row["device_id"] for row in body["data"]] == devices

    async def test_silent_for_longest_first(self, client):
        for device in ("a", "b", "c"):
            await send(client, [(device, "INFO", 1, "m")])
        params = {"sort": "silent_for", "order": "desc"}
        body = (await client.get("/api/devices", params=params)).json()
        assert [row["device_id"] for row in body["data"]] == ["a", "b", "c"]
        assert [row["device_id"] for row in (await pages(client, limit=1, **params))] == [
            "a",
            "b",
            "c",
        ]

    @pytest.mark.parametrize("sort", ["device", "last_seen", "total", "errors", "silent_for"])
    @pytest.mark.parametrize("order", ["asc", "desc"])
    async def test_pages_hold_every_device_once(self, client, sort, order):
        await send(client, [(f"d{i % 7}", "ERROR" if i % 3 else "INFO", i, "m") for i in range(40)])
        params = {"sort": sort, "order": order}
        everything = (await client.get("/api/devices", params=params)).json()["data"]
        paged = await pages(client, limit=2, **params)
        assert [(row["device_id"], row["total"]) for row in paged] == [
            (row["device_id"], row["total"]) for row in everything
        ]
        assert len(paged) == 7

    async def test_filtered_by_device_prefix(self, client):
        await send(client)
        body = (await client.get("/api/devices", params={"q": "device:cam-*"})).json()
        assert [row["device_id"] for row in body["data"]] == ["cam-1", "cam-2"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"q": "pump"}, "q"),
            ({"q": "level:error"}, "q"),
            ({"q": "device:cam-\x00*"}, "q"),
            ({"sort": "loudest"}, "sort"),
            ({"limit": 0}, "limit"),
            ({"limit": 1001}, "limit"),
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"since": "soon"}, "since"),
        ],
    )
    async def test_a_bad_parameter_is_named(self, client, params, field):
        answer = await client.get("/api/devices", params=params)
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["detail"][0]["field"] == field

    @pytest.mark.parametrize(
        "made_up",
        [
            ["total", False, 10**30, "a"],
            ["total", False, 2**63, "a"],
            ["total", False, True, "a"],
            ["last_seen", False, -(10**18), "a"],
            ["device", False, 1, "a"],
            ["total", False, 1, 7],
            ["total", False, 1],
            ["device", False, None, "cam\x00"],
        ],
    )
    async def test_a_made_up_cursor_is_refused(self, client, made_up):
        await send(client)
        cursor = base64.urlsafe_b64encode(json.dumps(made_up).encode()).decode()
        params = {"sort": made_up[0], "cursor": cursor}
        answer = await client.get("/api/devices", params=params)
        assert answer.status_code == 400
        assert answer.json()["detail"][0]["field"] == "cursor"

    async def test_a_cursor_of_another_sort_is_refused(self, client):
        await send(client)
        first = (await client.get("/api/devices", params={"limit": 1})).json()
        params = {"limit": 1, "sort": "total", "cursor": first["next_cursor"]}
        answer = await client.get("/api/devices", params=params)
        assert answer.status_code == 400
        assert answer.json()["detail"][0]["rule"] == "cursor_invalid"


async def pages(client, **params):
    found, cursor = [], None
    while True:
        asked = {**params, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/devices", params=asked)).json()
        found += body["data"]
        cursor = body.get("next_cursor")
        if cursor is None:
            return found


async def test_stats_come_from_the_rollups(client):
    await send(client)
    await send(client, [("late", "INFO", 100, "m")])
    stats = (await client.get("/api/stats")).json()
    assert stats["total_logs"] == 8
    assert stats["logs_by_level"] == {
        "INFO": 3,
        "ERROR": 2,
        "WARNING": 1,
        "CRITICAL": 1,
        "DEBUG": 1,
    }
    assert stats["recent_devices"][0] == "late"


class TestDevicePrefix:
    @pytest.fixture
    async def keys(self, tmp_path):
        settings = secure_settings(tmp_path)
        keys = {
            "writer": await add_key(settings, "writer", Scope.INGEST),
            "all": await add_key(settings, "all", Scope.READ),
            "cams": await add_key(settings, "cams", Scope.READ, device_prefix="cam-"),
        }
        async with serving(settings) as client:
            await send(client, headers=bearer(keys["writer"]))
            yield client, {name: bearer(key) for name, key in keys.items()}

    async def test_counts_of_its_own_devices_only(self, keys):
        client, headers = keys
        for q in ("", "door", "device:door-1", "level:info"):
            mine = await counted(client, headers["cams"], q=q, group_by="device")
            assert {bucket["key"] for bucket in mine["buckets"]} <= {"cam-1", "cam-2"}
        everyone = await counted(client, headers["all"], group_by="device")
        assert {bucket["key"] for bucket in everyone["buckets"]} == {"cam-1", "cam-2", "door-1"}
        alone = await counted(client, headers["cams"])
        assert sum(bucket["count"] for bucket in alone["buckets"]) == 5

    async def test_devices_of_its_own_only(self, keys):
        client, headers = keys
        body = (await client.get("/api/devices", headers=headers["cams"])).json()
        assert [row["device_id"] for row in body["data"]] == ["cam-1", "cam-2"]
        params = {"q": "device:door-*"}
        body = (await client.get("/api/devices", params=params, headers=headers["cams"])).json()
        assert body["data"] == []

    async def test_read_scope_is_needed(self, keys):
        client, headers = keys
        for path in ("/api/logs/count", "/api/devices"):
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers=headers["writer"])).status_code == 403


async def test_the_pipeline_counts_what_the_worker_stored(pipeline):
    """Redis → worker → PostgreSQL: the worker keeps the rollups, the API reads them."""
    async with running_app(pipeline) as app, client_of(app) as client, running_worker(pipeline):
        await send(client)

        async def stored() -> bool:
            return await app.state.services.queue.backlog() == 0

        await wait_for(stored, what="every log stored")
        by_level = await counted(client, q="device:cam-*", group_by="level")
        scanned = await counted(client, q="pump OR valve", group_by="level")
        assert (
            by_level["buckets"]
            == scanned["buckets"]
            == [
                {"start": at(0), "key": "ERROR", "count": 1},
                {"start": at(0), "key": "INFO", "count": 1},
                {"start": at(0), "key": "WARNING", "count": 1},
                {"start": at(60), "key": "CRITICAL", "count": 1},
                {"start": at(60), "key": "ERROR", "count": 1},
            ]
        )
        body = (await client.get("/api/devices", params={"sort": "errors", "order": "desc"})).json()
        assert [(row["device_id"], row["total"]) for row in body["data"]] == [
            ("cam-1", 3),
            ("cam-2", 2),
            ("door-1", 2),
        ]
        assert (await client.get("/api/stats")).json()["total_logs"] == len(LOGS)
