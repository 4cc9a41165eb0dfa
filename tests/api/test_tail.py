"""Live tail, embedded: `GET /api/tail` over a real connection, as Server-Sent Events."""

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from fleetlog.auth.principals import Scope
from fleetlog.config import Settings
from fleetlog.tail.hub import TailHub
from fleetlog.tail.store import PAGE
from tests.fixtures.app import migrated
from tests.fixtures.auth import add_key, bearer, secure_settings
from tests.fixtures.pipeline import sample, wait_for
from tests.fixtures.process import FleetlogProcess, Server, running_server
from tests.fixtures.records import make_batch, make_log
from tests.fixtures.sse import LOG_FIELDS, Served, post, serving, tail


async def embedded(tmp_path: Path, **overrides) -> Settings:
    return await migrated(Settings(_env_file=None, data_dir=tmp_path / "data", **overrides))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(await embedded(tmp_path)) as running:
        yield running


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=10.0) as client:
        yield client


async def test_a_log_reaches_the_tail_within_a_second_of_its_answer(http):
    async with tail(http) as events:
        message_id = await post(http, device_id="cam-7", log_data={"site": "north"})
        answered = time.monotonic()
        event = await events.next(within=1.0)
        assert time.monotonic() - answered < 1.0
    assert event.event == "log"
    assert event.id == message_id
    log = event.json()
    assert set(log) == LOG_FIELDS
    assert log["id"] == int(message_id)
    assert (log["device_id"], log["log_level"]) == ("cam-7", "INFO")
    assert log["log_data"] == {"site": "north"}
    assert log["received_at"].endswith("Z")


async def test_the_query_filters_the_tail(http):
    async with tail(http, "level>=error device:cam-*") as events:
        await post(http, device_id="cam-1", log_level="INFO", message="fine")
        await post(http, device_id="pump-1", log_level="ERROR", message="pump stuck")
        await post(http, device_id="cam-2", log_level="ERROR", message="lens cracked")
        await post(http, device_id="cam-3", log_level="CRITICAL", message="on fire")
        found = await events.logs(2)
    assert [event.json()["message"] for event in found] == ["lens cracked", "on fire"]


async def test_logs_of_one_batch_arrive_in_order(http):
    async with tail(http) as events:
        answer = await http.post("/api/logs/batch", json=make_batch(5))
        found = await events.logs(5)
    assert [event.id for event in found] == answer.json()["message_ids"]


class TestResume:
    async def test_last_event_id_resumes_after_that_event(self, http):
        async with tail(http) as events:
            first = await post(http, message="one")
            await post(http, message="two")
            assert (await events.next()).id == first
        await post(http, message="three")
        async with tail(http, headers={"Last-Event-ID": first}) as events:
            await post(http, message="four")
            found = await events.logs(3)
        assert [event.json()["message"] for event in found] == ["two", "three", "four"]

    async def test_the_parameter_resumes_when_the_header_cannot_be_sent(self, http):
        first = await post(http, message="one")
        await post(http, message="two")
        async with tail(http, "two OR three", params={"last_event_id": first}) as events:
            await post(http, message="three")
            found = await events.logs(2)
        assert [event.json()["message"] for event in found] == ["two", "three"]

    async def test_the_header_wins_over_the_parameter(self, http):
        first = await post(http, message="one")
        second = await post(http, message="two")
        await post(http, message="three")
        headers = {"Last-Event-ID": second}
        async with tail(http, params={"last_event_id": first}, headers=headers) as events:
            [event] = await events.logs(1)
        assert event.json()["message"] == "three"

    async def test_an_id_it_never_sent_is_a_400(self, http):
        answer = await http.get("/api/tail", headers={"Last-Event-ID": "0-1700000000000-0-0"})
        assert answer.status_code == 400
        assert answer.json()["detail"][0]["field"] == "last_event_id"


async def test_a_query_that_cannot_be_parsed_is_a_400(http):
    answer = await http.get("/api/tail", params={"q": "level>=loud"})
    assert answer.status_code == 400
    assert answer.json()["detail"][0]["rule"] == "level"
    answer = await http.get("/api/tail", params={"q": "(pump"})
    assert answer.status_code == 400
    assert answer.json()["detail"][0]["rule"] == "syntax"


async def test_heartbeats_keep_an_idle_tail_open_past_the_connection_deadlines(tmp_path):
    quick = timedelta(milliseconds=300)
    settings = await embedded(
        tmp_path, tail_heartbeat=timedelta(milliseconds=100), head_timeout=quick, body_timeout=quick
    )
    async with serving(settings) as running, httpx.AsyncClient(base_url=running.url) as http:
        before = sample("fleetlog_open_connections")
        async with tail(http) as events:
            assert sample("fleetlog_open_connections") == before + 1
            started = time.monotonic()
            while time.monotonic() - started < 4 * quick.total_seconds():
                assert (await events.next(comments=True, within=1.0)).comment == "ping"
            await post(http, message="still here")
            [event] = await events.logs(1)
    assert event.json()["message"] == "still here"


class TestSlowClient:
    BUFFER = 20

    async def test_a_client_that_stops_reading_costs_a_bounded_buffer_and_is_told(self, tmp_path):
        settings = await embedded(tmp_path, tail_buffer=self.BUFFER)
        async with serving(settings) as running, httpx.AsyncClient(base_url=running.url) as http:
            hub = running.app.state.services.tail
            async with tail(http, "level:error") as events:
                # Unread, the stream fills the socket buffers, then the tail's own.
                posted = 0
                while not any(each.dropped for each in hub.subscriptions):
                    batch = {"logs": [make_log(log_level="ERROR", message="x" * 4000)] * 100}
                    assert (await http.post("/api/logs/batch", json=batch)).status_code == 200
                    posted += 100
                    assert posted < 100_000, "the tail never fell behind"
                # The window holds the buffer's logs, or one whole read when it was more.
                assert len(hub.window.events) <= max(self.BUFFER, PAGE)
                await post(http, log_level="INFO", message="not matched")
                posted_last = await post(http, log_level="ERROR", message="the last")
                delivered, dropped = 0, 0
                while True:
                    event = await events.next()
                    if event.event == "dropped":
                        dropped += event.json()["dropped"]
                    elif event.id == posted_last:
                        break
                    else:
                        delivered += 1
        assert dropped > 0
        assert delivered + dropped == posted

    async def test_a_client_that_keeps_up_loses_nothing_to_a_burst(self, tmp_path):
        settings = await embedded(tmp_path, tail_buffer=self.BUFFER)
        async with (
            serving(settings) as running,
            httpx.AsyncClient(base_url=running.url) as http,
            tail(http) as events,
        ):
            answer = await http.post("/api/logs/batch", json=make_batch(500))
            found = await events.logs(500)
        assert [event.id for event in found] == answer.json()["message_ids"]


class TestTheCap:
    async def test_past_the_cap_a_tail_is_refused_until_one_closes(self, tmp_path):
        settings = await embedded(tmp_path, max_tails=2)
        async with serving(settings) as running, httpx.AsyncClient(base_url=running.url) as http:
            hub: TailHub = running.app.state.services.tail
            async with tail(http):
                async with tail(http):
                    answer = await http.get("/api/tail")
                    assert answer.status_code == 429
                    assert answer.headers["Retry-After"] == "1"
                    assert answer.json()["error"] == "too_many_tails"
                    assert answer.json()["detail"] == [{"rule": "max_tails", "limit": 2}]

                async def freed() -> bool:
                    return hub.open == 1

                await wait_for(freed, what="the closed tail's slot", within=5.0)
                async with tail(http) as events:
                    await post(http, message="room again")
                    [event] = await events.logs(1)
            await wait_for(lambda: _none_open(hub), what="every slot freed", within=5.0)
        assert event.json()["message"] == "room again"


async def _none_open(hub: TailHub) -> bool:
    return hub.open == 0 and not hub.subscriptions


class TestDevicePrefix:
    async def test_a_key_bound_to_a_prefix_tails_only_its_devices(self, tmp_path):
        settings = secure_settings(tmp_path / "data")
        reader = await add_key(settings, "cams", Scope.READ, device_prefix="cam-")
        writer = await add_key(settings, "writer", Scope.INGEST)
        async with serving(settings) as running, httpx.AsyncClient(base_url=running.url) as http:
            async with tail(http, "device:pump-1 OR pump", headers=bearer(reader)) as events:
                for device_id in ("pump-1", "cam-1"):
                    log = make_log(device_id=device_id, message="pump pressure low")
                    answer = await http.post("/api/log", json=log, headers=bearer(writer))
                    assert answer.status_code == 200
                [event] = await events.logs(1)
        assert event.json()["device_id"] == "cam-1"

    async def test_without_read_scope_there_is_no_tail(self, tmp_path):
        settings = secure_settings(tmp_path / "data")
        writer = await add_key(settings, "writer", Scope.INGEST)
        async with serving(settings) as running, httpx.AsyncClient(base_url=running.url) as http:
            assert (await http.get("/api/tail")).status_code == 401
            assert (await http.get("/api/tail", headers=bearer(writer))).status_code == 403


async def test_a_tail_of_fleetlog_serve_sees_the_commits_of_every_server_process(tmp_path):
    with running_server(tmp_path / "data", workers=2) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10.0) as http,
            tail(http) as events,
        ):
            posted = []
            for number in range(20):
                # A connection of its own: either process may take it.
                async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as fresh:
                    posted.append(await post(fresh, message=f"log {number}"))
            found = await events.logs(20)
    assert [event.id for event in found] == posted


async def test_fleetlog_tail_follows_a_real_server_and_again_after_it_was_killed(tmp_path):
    data_dir = tmp_path / "data"
    output = tmp_path / "tail.out"
    server = Server(data_dir)
    client = FleetlogProcess(
        ["tail", "level>=error"], env={"FLEETLOG_URL": server.url}, log_path=output
    )
    server.start()
    try:
        server.wait_ready()
        client.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
            await wait_for(lambda: _tailing(http), what="the client's tail", within=10.0)
            await post(http, log_level="ERROR", message="first")
            await post(http, log_level="INFO", message="not wanted")
            await wait_for(lambda: _printed(output, "first"), what="the first log", within=5.0)
        server.signal(signal.SIGKILL)
        server.start()  # on the same port: the client reconnects with its last event id
        server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
            await post(http, log_level="CRITICAL", message="second")
            await wait_for(lambda: _printed(output, "second"), what="the next log", within=10.0)
    finally:
        client.stop()
        server.stop()
    messages = [
        json.loads(line)["message"] for line in output.read_text().splitlines() if line[:1] == "{"
    ]
    assert messages == ["first", "second"]


async def _tailing(http: httpx.AsyncClient) -> bool:
    metrics = (await http.get("/metrics")).text
    return "fleetlog_tails 1.0" in metrics


async def _printed(output: Path, message: str) -> bool:
    return f'"message":"{message}"' in await asyncio.to_thread(output.read_text)
