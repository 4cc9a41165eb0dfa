import asyncio
from datetime import UTC, datetime, timedelta

from fleetlog.config import Settings
from tests.fixtures.app import client_of, migrated, running_app
from tests.fixtures.records import make_log

# An hour ago, to the minute: every event time these tests send is inside the window.
HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")


async def post_at(client, device_id, timestamp, message):
    answer = await client.post(
        "/api/log", json=make_log(device_id=device_id, timestamp=timestamp, message=message)
    )
    assert answer.status_code == 200


class TestDeviceLogs:
    async def test_newest_first_by_event_time(self, client):
        await post_at(client, "d1", f"{HOUR_AGO}:02Z", "second")
        await post_at(client, "d1", f"{HOUR_AGO}:01Z", "first (sent late)")
        await post_at(client, "d1", f"{HOUR_AGO}:03Z", "third")
        body = (await client.get("/api/logs/d1")).json()
        assert [row["message"] for row in body["data"]] == ["third", "second", "first (sent late)"]
        assert body["total"] == 3
        assert body["source"] == "database"

    async def test_only_the_asked_device(self, client):
        await post_at(client, "d1", None, "mine")
        await post_at(client, "d2", None, "other")
        rows = (await client.get("/api/logs/d1")).json()["data"]
        assert [row["device_id"] for row in rows] == ["d1"]

    async def test_limit_keeps_the_newest(self, client):
        for second in range(5):
            await post_at(client, "d1", f"{HOUR_AGO}:0{second}Z", f"m{second}")
        body = (await client.get("/api/logs/d1", params={"limit": 2})).json()
        assert [row["message"] for row in body["data"]] == ["m4", "m3"]
        assert body["total"] == 2

    async def test_unknown_device_is_an_empty_page(self, client):
        body = (await client.get("/api/logs/nobody")).json()
        assert body == {"total": 0, "source": "database", "data": []}

    async def test_every_row_has_the_reference_fields(self, client):
        await post_at(client, "d1", None, "m")
        (row,) = (await client.get("/api/logs/d1")).json()["data"]
        assert {"id", "device_id", "log_level", "message", "log_data", "created_at"} <= set(row)


async def test_concurrent_writers_all_read_back(client):
    async def writer(n):
        for i in range(10):
            answer = await client.post("/api/log", json=make_log(device_id=f"w{n}", message=f"{i}"))
            assert answer.status_code == 200
            rows = (await client.get(f"/api/logs/w{n}")).json()["data"]
            assert str(i) in {row["message"] for row in rows}

    await asyncio.gather(*(writer(n) for n in range(20)))
    for n in range(20):
        assert (await client.get(f"/api/logs/w{n}")).json()["total"] == 10


class TestStats:
    async def test_counts_by_level_and_recent_devices(self, client):
        batch = {
            "logs": [
                make_log(device_id="a", log_level="INFO"),
                make_log(device_id="b", log_level="ERROR"),
                make_log(device_id="b", log_level="err"),
            ]
        }
        await client.post("/api/logs/batch", json=batch)
        body = (await client.get("/api/stats")).json()
        assert body["total_logs"] == 3
        assert body["logs_by_level"] == {"INFO": 1, "ERROR": 2}
        assert set(body["recent_devices"]) == {"a", "b"}
        assert body["max_age_s"] == 60

    async def test_cached_for_the_stated_time(self, client):
        first = (await client.get("/api/stats")).json()
        await client.post("/api/log", json=make_log())
        second = (await client.get("/api/stats")).json()
        assert second == first

    async def test_fresh_once_the_cache_expires(self, tmp_path):
        settings = Settings(_env_file=None, data_dir=tmp_path, stats_cache_ttl=timedelta(0))
        async with running_app(await migrated(settings)) as app, client_of(app) as http:
            assert (await http.get("/api/stats")).json()["total_logs"] == 0
            await http.post("/api/log", json=make_log())
            assert (await http.get("/api/stats")).json()["total_logs"] == 1
