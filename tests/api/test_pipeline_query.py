"""The query side in Redis mode: cached answers never hide a stored log; stats cached in Redis."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from fastapi import FastAPI

from fleetlog.records import encode_records
from fleetlog.store.bulk import Packed
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import (
    make_record,
    migrate_database,
    running_worker,
    sample,
    wait_for,
)
from tests.fixtures.records import make_log


@pytest.fixture
async def pipeline_app(pipeline) -> AsyncIterator[FastAPI]:
    async with running_app(pipeline) as app:
        yield app


@pytest.fixture
async def http(pipeline_app) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(pipeline_app) as client:
        yield client


def stored_and_acknowledged(app: FastAPI) -> Callable[[], Awaitable[bool]]:
    """Nothing left in the streams: every entry was committed, its devices bumped, and deleted."""

    async def condition() -> bool:
        return await app.state.services.queue.backlog() == 0

    return condition


async def messages(http: httpx.AsyncClient, device_id: str) -> tuple[str, list[str]]:
    body = (await http.get(f"/api/logs/{device_id}")).json()
    return body["source"], [row["message"] for row in body["data"]]


async def post(http: httpx.AsyncClient, **fields) -> None:
    assert (await http.post("/api/log", json=make_log(**fields))).status_code == 200


async def test_a_stored_log_is_never_hidden_by_a_cached_answer(http, pipeline, pipeline_app):
    async with running_worker(pipeline):
        await post(http, device_id="cam", message="first")
        await wait_for(stored_and_acknowledged(pipeline_app), what="the first log stored")
        assert await messages(http, "cam") == ("database", ["first"])
        assert await messages(http, "cam") == ("cache", ["first"])

        ahead = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        await post(http, device_id="cam", message="second", timestamp=ahead)
        await wait_for(stored_and_acknowledged(pipeline_app), what="the second log stored")
        assert await messages(http, "cam") == ("database", ["second", "first"])
        assert await messages(http, "cam") == ("cache", ["second", "first"])


async def test_other_devices_keep_their_cached_answers(http, pipeline, pipeline_app):
    async with running_worker(pipeline):
        await post(http, device_id="quiet", message="q")
        await post(http, device_id="busy", message="b1")
        await wait_for(stored_and_acknowledged(pipeline_app), what="logs stored")
        assert (await messages(http, "quiet"))[0] == "database"
        await post(http, device_id="busy", message="b2")
        await wait_for(stored_and_acknowledged(pipeline_app), what="logs stored")
        assert await messages(http, "quiet") == ("cache", ["q"])


async def test_cache_hits_and_misses_are_counted(http):
    misses = sample("fleetlog_cache_requests_total", cache="logs", outcome="miss")
    hits = sample("fleetlog_cache_requests_total", cache="logs", outcome="hit")
    await http.get("/api/logs/nobody")
    await http.get("/api/logs/nobody")
    assert sample("fleetlog_cache_requests_total", cache="logs", outcome="miss") == misses + 1
    assert sample("fleetlog_cache_requests_total", cache="logs", outcome="hit") == hits + 1


async def test_stats_are_cached_in_redis_for_their_ttl(http, pipeline, pipeline_app, redis):
    first = (await http.get("/api/stats")).json()
    assert first["max_age_s"] == 60
    async with running_worker(pipeline):
        await post(http, device_id="cam", message="after the stats")
        await wait_for(stored_and_acknowledged(pipeline_app), what="the log stored")
    assert (await http.get("/api/stats")).json() == first
    await redis.delete("fleetlog:cache:stats")
    assert (await http.get("/api/stats")).json()["total_logs"] == first["total_logs"] + 1


async def test_health_has_the_reference_checks(http):
    body = (await http.get("/health")).json()
    assert body["checks"] == {
        "redis": True,
        "postgres": True,
        "enqueue": True,
        "redis_memory": True,
    }
    assert body["mode"] == "redis-postgres"


async def test_readiness_reports_the_backlog(http):
    await post(http, device_id="cam", message="waiting for a worker")
    body = (await http.get("/ready")).json()
    assert body["ready"] is True
    assert body["backlog"] == 1


async def test_cached_answers_come_from_the_primary_not_a_lagging_replica(
    pipeline, postgres_server, tmp_path
):
    lagging = f"r_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(lagging)
    try:
        await migrate_database(postgres_server.dsn(lagging))
        settings = pipeline.model_copy(
            update={"database_replica_urls": [postgres_server.dsn(lagging)]}
        )
        async with running_app(settings) as app, client_of(app) as http:
            async with running_worker(settings):
                await post(http, device_id="cam", message="stored")
                await wait_for(stored_and_acknowledged(app), what="the log stored")
            assert await messages(http, "cam") == ("database", ["stored"])
            assert await messages(http, "cam") == ("cache", ["stored"])
    finally:
        postgres_server.drop_database(lagging)


async def test_pages_and_cached_limits_on_postgresql(pipeline):
    settings = pipeline.model_copy(update={"max_response_bytes": 64 * 1024})
    async with running_app(settings) as app, client_of(app) as http:
        async with running_worker(settings):
            start = datetime.now(UTC) - timedelta(hours=1)
            for i in range(20):
                log = make_log(device_id="cam", message=f"m{i}", log_data={"b": "x" * 10_000})
                await post(http, **log, timestamp=(start + timedelta(seconds=i)).isoformat())
            await wait_for(stored_and_acknowledged(app), what="the logs stored")
        messages, params = [], {"limit": 1000}
        while True:
            body = (await http.get("/api/logs/cam", params=params)).json()
            assert len(orjson.dumps(body)) <= 64 * 1024
            messages += [row["message"] for row in body["data"]]
            if "next_cursor" not in body:
                break
            params["cursor"] = body["next_cursor"]
        assert messages == [f"m{i}" for i in reversed(range(20))]
        first = (await http.get("/api/logs/cam", params={"limit": 3})).json()
        again = (await http.get("/api/logs/cam", params={"limit": 2})).json()
        assert (first["source"], again["source"]) == ("database", "cache")
        assert again["data"] == first["data"][:2]
        assert (
            again["next_cursor"]
            == (await http.get("/api/logs/cam", params={"limit": 2})).json()["next_cursor"]
        )
        cached = await app.state.services.queue.client.keys("fleetlog:*:ans:*")
        assert sorted(cached) == [b"fleetlog:{d:cam}:ans:10", b"fleetlog:{d:cam}:ans:1000"]


async def test_a_bound_inside_a_later_chunk_still_leaves_a_cursor_on_postgresql(pipeline):
    """16 logs (the store's first chunk) fit the bound, the 17th does not: the rest of the
    device's logs are still a cursor away."""
    settings = pipeline.model_copy(update={"max_response_bytes": 64 * 1024})
    async with running_app(settings) as app, client_of(app) as http:
        async with running_worker(settings):
            start = datetime.now(UTC) - timedelta(hours=1)
            for i in range(20):
                at = (start + timedelta(seconds=i)).isoformat()
                await post(
                    http,
                    device_id="cam",
                    message=f"m{i}",
                    log_data={"b": "x" * 3_800},
                    timestamp=at,
                )
            await wait_for(stored_and_acknowledged(app), what="the logs stored")
        pages, params = [], {"limit": 1000}
        while True:
            pages.append((await http.get("/api/logs/cam", params=params)).json())
            if "next_cursor" not in pages[-1]:
                break
            params["cursor"] = pages[-1]["next_cursor"]
        assert [page["total"] for page in pages] == [16, 4]
        messages = [row["message"] for page in pages for row in page["data"]]
        assert messages == [f"m{i}" for i in reversed(range(20))]


async def test_answers_cached_before_a_worker_starts_are_not_served_after_it_started(
    http, pipeline, writer
):
    """A worker that committed logs, then stopped while Redis refused the INCR that retires
    the cached answers they make stale, leaves that to the next worker to start."""
    assert await messages(http, "cam") == ("database", [])
    assert await messages(http, "cam") == ("cache", [])
    record = make_record(device_id="cam", message="committed, never retired")
    await writer.write([Packed.of(0, "1-0", encode_records([record]))])
    assert await messages(http, "cam") == ("cache", [])
    async with running_worker(pipeline):

        async def served() -> bool:
            return await messages(http, "cam") == ("database", ["committed, never retired"])

        await wait_for(served, what="the answer cached before the worker started retired")


async def test_a_closed_range_search_is_cached_until_a_log_of_its_days_is_stored(
    http, pipeline, pipeline_app
):
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = day.replace(hour=10)
    window = {
        "q": "valve",
        "since": day.isoformat(),
        "until": (day + timedelta(days=1)).isoformat(),
    }

    async def found() -> list[str]:
        body = (await http.get("/api/logs", params=window)).json()
        return [log["message"] for log in body["data"]]

    def hits() -> float:
        return sample("fleetlog_cache_requests_total", cache="search", outcome="hit")

    async with running_worker(pipeline):
        await post(http, device_id="cam", message="valve one", timestamp=yesterday.isoformat())
        await wait_for(stored_and_acknowledged(pipeline_app), what="the first log stored")
        before = hits()
        assert await found() == ["valve one"]
        assert await found() == ["valve one"]
        assert hits() == before + 1

        later = (yesterday + timedelta(hours=1)).isoformat()
        await post(http, device_id="other", message="valve two", timestamp=later)
        await wait_for(stored_and_acknowledged(pipeline_app), what="the second log stored")
        assert await found() == ["valve two", "valve one"]

        await post(http, device_id="cam", message="valve today")
        await wait_for(stored_and_acknowledged(pipeline_app), what="today's log stored")
        assert await found() == ["valve two", "valve one"]
        assert hits() == before + 2


async def test_counts_of_past_days_are_cached_until_a_log_of_their_day_is_stored(
    http, pipeline, pipeline_app
):
    day = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    window = {
        "since": (day + timedelta(hours=6)).isoformat(),
        "interval": "1h",
        "group_by": "level",
        "q": "device:cam",
    }

    async def counted() -> dict[str, int]:
        body = (await http.get("/api/logs/count", params=window)).json()
        return {
            f"{bucket['start'][:13]} {bucket['key']}": bucket["count"] for bucket in body["buckets"]
        }

    def hits() -> float:
        return sample("fleetlog_cache_requests_total", cache="counts", outcome="hit")

    at = (day + timedelta(hours=10)).isoformat()
    async with running_worker(pipeline):
        await post(http, device_id="cam", message="early", timestamp=day.isoformat())
        await post(http, device_id="cam", message="one", timestamp=at)
        await wait_for(stored_and_acknowledged(pipeline_app), what="the logs stored")
        before = hits()
        first = await counted()
        assert first == {f"{at[:13]} INFO": 1}
        assert await counted() == first
        assert hits() == before + 2  # the two past days, the second time

        await post(http, device_id="cam", message="late", log_level="ERROR", timestamp=at)
        await wait_for(stored_and_acknowledged(pipeline_app), what="the late log stored")
        assert await counted() == {f"{at[:13]} ERROR": 1, f"{at[:13]} INFO": 1}
        assert hits() == before + 3  # yesterday still cached; the late log's day read again
