"""GET /api/logs: the search route, its parameters, its cursors, and who sees what."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fleetlog.auth.principals import Scope
from tests.api.test_pipeline_query import stored_and_acknowledged
from tests.fixtures.app import client_of, running_app
from tests.fixtures.auth import add_key, bearer, secure_settings, serving
from tests.fixtures.pipeline import running_worker, wait_for
from tests.fixtures.records import make_log


def minutes_ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


async def send(http: httpx.AsyncClient, logs: list[dict], **headers: str) -> None:
    answer = await http.post("/api/logs/batch", json={"logs": logs}, headers=headers)
    assert answer.status_code == 200, answer.text


async def walk(http: httpx.AsyncClient, between_pages=None, **params) -> list[list[str]]:
    """Every page of a search, as lists of messages; `between_pages` runs after each page.
    The first page is asked with an empty cursor, as some clients do."""
    pages, cursor = [], None
    while True:
        answer = await http.get("/api/logs", params={**params, "cursor": cursor or ""})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([log["message"] for log in body["data"]])
        cursor = body.get("next_cursor")
        if cursor is None:
            return pages
        if between_pages is not None:
            await between_pages(len(pages))


class TestAnswers:
    async def test_a_search_answers_logs_with_their_times_and_how_long_it_took(self, client):
        await send(client, [make_log(message="pump stuck", timestamp=minutes_ago(1))])
        body = (await client.get("/api/logs", params={"q": "pump"})).json()
        assert set(body) == {"data", "took_ms"}
        (log,) = body["data"]
        assert set(log) == {
            "id",
            "device_id",
            "log_level",
            "message",
            "log_data",
            "created_at",
            "received_at",
        }
        assert log["message"] == "pump stuck"
        assert body["took_ms"] >= 0

    async def test_without_q_every_log_newest_first(self, client):
        await send(client, [make_log(message=f"m{i}", timestamp=minutes_ago(i)) for i in range(5)])
        assert await walk(client, limit=2) == [["m0", "m1"], ["m2", "m3"], ["m4"]]
        assert await walk(client, limit=5, order="asc") == [["m4", "m3", "m2", "m1", "m0"]]


class TestBadParameters:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"limit": "0"}, "limit"),
            ({"limit": "1001"}, "limit"),
            ({"order": "sideways"}, "order"),
        ],
    )
    async def test_out_of_range_parameters_get_a_422(self, client, params, field):
        answer = await client.get("/api/logs", params=params)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["field"] == field

    @pytest.mark.parametrize(
        ("params", "field", "rule"),
        [
            ({"q": "pump ("}, "q", "syntax"),
            ({"q": "level:loud"}, "q", "level"),
            ({"q": "colour:red"}, "q", "unknown_field"),
            ({"since": "yesterday"}, "since", "time_format"),
            ({"since": "1h", "until": "2h"}, "until", "after_since"),
            ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor", "cursor_invalid"),
        ],
    )
    async def test_queries_times_and_cursors_it_cannot_use_get_a_400(
        self, client, params, field, rule
    ):
        answer = await client.get("/api/logs", params=params)
        assert answer.status_code == 400
        (problem,) = answer.json()["detail"]
        assert (problem["field"], problem["rule"]) == (field, rule)

    async def test_a_cursor_belongs_to_its_own_query(self, client):
        await send(client, [make_log(message=f"pump {i}") for i in range(3)])
        first = (await client.get("/api/logs", params={"q": "pump", "limit": 1})).json()
        cursor = first["next_cursor"]
        for other in ({"q": "pump 1"}, {"q": "pump", "order": "asc"}, {"q": "pump", "since": "1h"}):
            answer = await client.get("/api/logs", params={**other, "cursor": cursor})
            assert answer.status_code == 400, other
        device_cursor = (await client.get("/api/logs/device_001", params={"limit": 1})).json()
        answer = await client.get(
            "/api/logs", params={"q": "pump", "cursor": device_cursor["next_cursor"]}
        )
        assert answer.status_code == 400
        tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
        answer = await client.get("/api/logs", params={"q": "pump", "cursor": tampered})
        assert answer.status_code == 400


class TestPagingWhileLogsArrive:
    async def test_newest_first_pages_neither_skip_nor_repeat(self, client):
        await send(
            client, [make_log(message=f"old {i}", timestamp=minutes_ago(i + 1)) for i in range(20)]
        )

        async def more_arrive(page: int) -> None:
            await send(
                client,
                [
                    make_log(message=f"new {page}"),
                    make_log(message=f"late {page}", timestamp=minutes_ago(30)),
                ],
            )

        pages = await walk(client, more_arrive, limit=3)
        seen = [message for page in pages for message in page]
        assert len(seen) == len(set(seen))
        assert [m for m in seen if m.startswith("old")] == [f"old {i}" for i in range(20)]
        # Logs newer than the page reached are not in this walk; older ones arrive below it.
        assert not any(m.startswith("new") for m in seen)
        assert any(m.startswith("late") for m in seen)

    async def test_oldest_first_pages_reach_what_arrived_meanwhile(self, client):
        await send(
            client, [make_log(message=f"old {i}", timestamp=minutes_ago(20 - i)) for i in range(20)]
        )

        async def more_arrive(page: int) -> None:
            await send(client, [make_log(message=f"new {page}")])

        pages = await walk(client, more_arrive, limit=4, order="asc")
        seen = [message for page in pages for message in page]
        assert len(seen) == len(set(seen))
        assert seen[:20] == [f"old {i}" for i in range(20)]
        assert seen[20:] == [f"new {page}" for page in range(1, len(pages))]


async def test_a_key_bound_to_a_device_prefix_reads_only_its_devices(tmp_path):
    settings = secure_settings(tmp_path / "data")
    async with serving(settings) as http:
        writer = await add_key(settings, "writer", Scope.INGEST)
        reader = await add_key(settings, "cams", Scope.READ, device_prefix="cam-")
        await send(
            http,
            [
                make_log(device_id="cam-1", message="pump"),
                make_log(device_id="gw-1", message="pump"),
            ],
            **bearer(writer),
        )
        found = (await http.get("/api/logs", params={"q": "pump"}, headers=bearer(reader))).json()
        assert [log["device_id"] for log in found["data"]] == ["cam-1"]
        other = await http.get("/api/logs", params={"q": "device:gw-1"}, headers=bearer(reader))
        assert other.json()["data"] == []
        refused = await http.get("/api/logs/gw-1", headers=bearer(reader))
        assert refused.status_code == 403
        assert refused.json()["detail"][0]["rule"] == "device_prefix"
        assert (await http.get("/api/logs/cam-1", headers=bearer(reader))).status_code == 200


async def test_logs_stored_by_the_worker_are_found_on_postgresql(pipeline):
    async with running_app(pipeline) as app, client_of(app) as http, running_worker(pipeline):
        await send(
            http,
            [
                make_log(device_id="cam-1", message="Valve stuck on line 3", log_data={"line": 3}),
                make_log(device_id="cam-2", message="valve opened"),
            ],
        )
        await wait_for(stored_and_acknowledged(app), what="the logs stored")
        body = (await http.get("/api/logs", params={"q": '"valve stuck" attr.line>=3'})).json()
        assert [log["device_id"] for log in body["data"]] == ["cam-1"]
        assert body["data"][0]["log_data"] == {"line": 3}
