import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from fleetlog.config import Settings
from tests.fixtures.app import client_of, migrated, running_app
from tests.fixtures.records import make_log

# An hour ago, to the minute: every event time these tests send is inside the window.
HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
ONE_INSTANT = f"{HOUR_AGO}:00Z"


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


async def post_logs(client, device_id: str, n: int, *, data_bytes: int = 0) -> None:
    for i in range(n):
        log = make_log(
            device_id=device_id,
            message=f"m{i}",
            log_data={"blob": "x" * data_bytes},
            timestamp=f"{HOUR_AGO}:{i % 60:02d}Z",
        )
        assert (await client.post("/api/log", json=log)).status_code == 200


async def walk(client, device_id: str, **params) -> list[dict]:
    """Every page from the first to the one without next_cursor."""
    pages = []
    while True:
        answer = await client.get(f"/api/logs/{device_id}", params=params)
        assert answer.status_code == 200, answer.text
        assert int(answer.headers["content-length"]) == len(answer.content)
        pages.append(answer.json())
        if "next_cursor" not in pages[-1]:
            return pages
        params = {**params, "cursor": pages[-1]["next_cursor"]}


@pytest.fixture
async def small_answers(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, max_response_bytes=64 * 1024)
    async with running_app(await migrated(settings)) as app, client_of(app) as http:
        yield http


class TestPages:
    async def test_an_answer_stops_at_its_byte_bound_with_a_cursor_for_the_rest(
        self, small_answers
    ):
        await post_logs(small_answers, "big", 20, data_bytes=10_000)
        pages = await walk(small_answers, "big", limit=1000)
        assert len(pages) > 1
        for page in pages:
            assert len(orjson.dumps(page)) <= 64 * 1024
            assert page["total"] == len(page["data"]) > 0
        messages = [row["message"] for page in pages for row in page["data"]]
        assert messages == [f"m{i}" for i in reversed(range(20))]

    async def test_a_bound_inside_a_later_chunk_still_leaves_a_cursor(self, small_answers):
        # 16 logs (the first chunk the store reads) fit the bound, the 17th does not: the
        # store's second chunk has no log that fits, and older logs remain all the same.
        await post_logs(small_answers, "d1", 20, data_bytes=3_800)
        pages = await walk(small_answers, "d1", limit=1000)
        assert [page["total"] for page in pages] == [16, 4]
        messages = [row["message"] for page in pages for row in page["data"]]
        assert messages == [f"m{i}" for i in reversed(range(20))]

    async def test_one_log_larger_than_the_bound_is_still_answered(self, small_answers):
        await post_logs(small_answers, "huge", 2, data_bytes=100_000)
        pages = await walk(small_answers, "huge")
        assert [len(page["data"]) for page in pages] == [1, 1]

    async def test_limits_page_through_every_log_once(self, client):
        await post_logs(client, "d1", 5)
        pages = await walk(client, "d1", limit=2)
        assert [[row["message"] for row in page["data"]] for page in pages] == [
            ["m4", "m3"],
            ["m2", "m1"],
            ["m0"],
        ]

    async def test_logs_of_one_instant_are_paged_by_id(self, client):
        logs = [make_log(device_id="d1", message=f"m{i}", timestamp=ONE_INSTANT) for i in range(5)]
        batch = {"logs": logs}
        assert (await client.post("/api/logs/batch", json=batch)).status_code == 200
        pages = await walk(client, "d1", limit=2)
        ids = [row["id"] for page in pages for row in page["data"]]
        assert ids == sorted(ids, reverse=True)
        assert len(ids) == 5

    async def test_the_last_page_has_no_cursor(self, client):
        await post_logs(client, "d1", 2)
        body = (await client.get("/api/logs/d1", params={"limit": 2})).json()
        assert "next_cursor" not in body


class TestCursorRefused:
    @pytest.fixture
    async def cursor(self, client) -> str:
        await post_logs(client, "d1", 3)
        await post_logs(client, "d2", 3)
        return (await client.get("/api/logs/d1", params={"limit": 1})).json()["next_cursor"]

    @pytest.mark.parametrize(
        "edit",
        [
            lambda cursor: "not a cursor",
            lambda cursor: "",
            lambda cursor: cursor[:-2],
            lambda cursor: ("A" if cursor[0] != "A" else "B") + cursor[1:],
            lambda cursor: cursor + "AAAA",
            lambda cursor: "é" * 10,
        ],
    )
    async def test_a_malformed_or_edited_cursor(self, client, cursor, edit):
        answer = await client.get("/api/logs/d1", params={"cursor": edit(cursor)})
        assert answer.status_code in (400, 422)
        (problem,) = answer.json()["detail"]
        assert problem["field"] == "cursor"

    async def test_a_cursor_of_another_device(self, client, cursor):
        answer = await client.get("/api/logs/d2", params={"cursor": cursor})
        assert answer.status_code == 400
        body = answer.json()
        assert body["error"] == "invalid_parameter"
        assert body["detail"] == [
            {
                "field": "cursor",
                "rule": "cursor_invalid",
                "message": "must be a next_cursor that this same query answered with",
            }
        ]
