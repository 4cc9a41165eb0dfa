"""Live tail in the pipeline: plain XREAD on the shard streams, beside the workers' group."""

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from fleetlog.config import Settings
from tests.fixtures.pipeline import Table, running_worker, wait_for
from tests.fixtures.records import make_batch
from tests.fixtures.sse import LOG_FIELDS, Served, post, serving, tail


@pytest.fixture
async def served(pipeline: Settings) -> AsyncIterator[Served]:
    async with serving(pipeline) as running:
        yield running


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=10.0) as client:
        yield client


async def test_logs_reach_the_tail_within_a_second_and_the_worker_stores_them_all(
    http, pipeline, table: Table
):
    async with running_worker(pipeline), tail(http) as events:
        message_id = await post(http, device_id="cam-7", log_data={"site": "north"})
        answered = time.monotonic()
        [event] = await events.logs(1, within=1.0)
        assert time.monotonic() - answered < 1.0
        batch = await http.post("/api/logs/batch", json=make_batch(3))
        found = await events.logs(3)

        async def stored() -> bool:
            return await table.has(4)

        await wait_for(stored, what="the worker storing every log the tail read")
    assert event.id == message_id
    log = event.json()
    assert set(log) == LOG_FIELDS
    assert log["id"] == message_id  # not stored yet: the message id the client got
    assert (log["device_id"], log["log_data"]) == ("cam-7", {"site": "north"})
    assert [each.id for each in found] == batch.json()["message_ids"]
    assert sorted(await table.keys()) == sorted([message_id, *batch.json()["message_ids"]])


async def test_the_query_filters_the_tail(http):
    async with tail(http, 'attr.temp_c>30 -"all clear"') as events:
        await post(http, message="boiler hot", log_data={"temp_c": 25})
        await post(http, message="all clear", log_data={"temp_c": 35})
        await post(http, message="boiler hotter", log_data={"temp_c": 45})
        [event] = await events.logs(1)
    assert event.json()["message"] == "boiler hotter"


async def test_last_event_id_resumes_after_that_event(http):
    # No worker: the entries stay in the streams, as they do until they are stored.
    async with tail(http) as events:
        first = await post(http, message="one")
        await post(http, message="two")
        assert (await events.next()).id == first
    await post(http, message="three")
    async with tail(http, headers={"Last-Event-ID": first}) as events:
        await post(http, message="four")
        found = await events.logs(3)
    assert [event.json()["message"] for event in found] == ["two", "three", "four"]


async def test_an_id_of_no_shard_is_a_400(http, pipeline):
    for bad in ("17", f"{pipeline.stream_shards}-1700000000000-0-0", "0-1-2"):
        answer = await http.get("/api/tail", params={"last_event_id": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["detail"][0]["rule"] == "event_id"
