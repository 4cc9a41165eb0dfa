"""Idempotency-Key on every ingest route, on both stores: replayed, refused, released, scoped."""

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, inspect, select

from fleetlog.auth.principals import Scope
from fleetlog.config import Settings
from fleetlog.errors import StoreUnavailable
from fleetlog.idempotency.answers import Mark
from fleetlog.keys import Keys
from fleetlog.queue import Queue
from fleetlog.records import LogRecord
from fleetlog.redis_client import connect
from fleetlog.store.engine import create_store_engine
from fleetlog.store.migrate import migrate
from fleetlog.store.tables import logs
from tests.fixtures.app import client_of, running_app
from tests.fixtures.auth import add_key, secure_settings, serving
from tests.fixtures.migrations import downgrade_to
from tests.fixtures.pipeline import migrate_database, pipeline_settings
from tests.fixtures.records import make_batch, make_log


@dataclass
class Stack:
    """An app on one store, and how many logs it holds (stored, or queued for the worker)."""

    settings: Settings
    http: httpx.AsyncClient
    app: Any

    async def logs(self) -> int:
        if self.settings.embedded:
            engine = create_store_engine(self.settings)
            try:
                async with engine.connect() as conn:
                    count = select(func.count()).select_from(logs)
                    return int((await conn.execute(count)).scalar_one())
            finally:
                await engine.dispose()
        assert self.settings.redis_url is not None
        redis = connect(self.settings.redis_url)
        keys = Keys(self.settings.redis_namespace)
        try:
            counts = [await redis.get(keys.backlog(n)) for n in range(self.settings.stream_shards)]
        finally:
            await redis.aclose()
        return sum(int(count or 0) for count in counts)


@pytest.fixture(params=["embedded", "pipeline"])
async def stack(request, settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    if request.param == "pipeline":
        database_url = request.getfixturevalue("database_url")
        await migrate_database(database_url)
        settings = pipeline_settings(request.getfixturevalue("redis_url"), database_url, tmp_path)
    async with running_app(settings) as app, client_of(app) as http:
        yield Stack(settings, http, app)


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


class TestReplay:
    async def test_a_retry_gets_the_first_answer_and_stores_nothing(self, stack: Stack):
        body = make_batch(3)
        first = await stack.http.post("/api/logs/batch", json=body, headers=keyed('"k-1"'))
        again = await stack.http.post("/api/logs/batch", json=body, headers=keyed('"k-1"'))
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert await stack.logs() == 3

    async def test_the_quoted_and_bare_forms_are_one_key(self, stack: Stack):
        body = make_log()
        first = await stack.http.post("/api/log", json=body, headers=keyed('"abc"'))
        again = await stack.http.post("/api/log", json=body, headers=keyed("abc"))
        assert again.json() == first.json()
        assert await stack.logs() == 1

    async def test_a_gzip_body_is_the_same_request_as_its_plain_form(self, stack: Stack):
        body = json.dumps(make_batch(2)).encode()
        plain = {"Content-Type": "application/json", **keyed("zipped")}
        first = await stack.http.post("/api/logs/batch", content=body, headers=plain)
        again = await stack.http.post(
            "/api/logs/batch",
            content=gzip.compress(body, mtime=1),
            headers={**plain, "Content-Encoding": "gzip"},
        )
        assert again.json() == first.json()
        assert await stack.logs() == 2

    async def test_without_a_key_every_request_is_stored(self, stack: Stack):
        for _ in range(2):
            assert (await stack.http.post("/api/log", json=make_log())).status_code == 200
        assert await stack.logs() == 2


class TestShippers:
    async def test_loki_push(self, stack: Stack):
        body = {"streams": [{"stream": {"host": "cam-1"}, "values": [[now_ns(), "up"]]}]}
        for _ in range(2):
            answer = await stack.http.post("/loki/api/v1/push", json=body, headers=keyed("l"))
            assert answer.status_code == 204
        assert await stack.logs() == 1

    async def test_gelf(self, stack: Stack):
        body = {"version": "1.1", "host": "cam-1", "short_message": "up"}
        answers = [await stack.http.post("/gelf", json=body, headers=keyed("g")) for _ in range(2)]
        assert [answer.status_code for answer in answers] == [202, 202]
        assert await stack.logs() == 1

    async def test_otlp(self, stack: Stack):
        host = {"stringValue": "cam-1"}
        body = {
            "resourceLogs": [
                {
                    "resource": {"attributes": [{"key": "host.name", "value": host}]},
                    "scopeLogs": [{"logRecords": [{"body": {"stringValue": "up"}}]}],
                }
            ]
        }
        answers = [
            await stack.http.post("/v1/logs", json=body, headers=keyed("o")) for _ in range(2)
        ]
        assert [answer.status_code for answer in answers] == [200, 200]
        assert answers[1].content == answers[0].content
        assert await stack.logs() == 1

    async def test_elasticsearch_bulk(self, stack: Stack):
        lines = [{"create": {}}, {"message": "up", "host": {"name": "cam-1"}}]
        body = "".join(json.dumps(line) + "\n" for line in lines)
        headers = {"Content-Type": "application/x-ndjson", **keyed("e")}
        answers = [
            await stack.http.post("/logs/_bulk", content=body, headers=headers) for _ in range(2)
        ]
        assert answers[1].json() == answers[0].json()
        assert answers[1].headers["x-elastic-product"] == "Elasticsearch"
        assert await stack.logs() == 1


def now_ns() -> str:
    return str(time.time_ns())


class TestRefusals:
    async def test_the_same_key_for_another_body_is_a_422(self, stack: Stack):
        await stack.http.post("/api/log", json=make_log(), headers=keyed("k"))
        other = await stack.http.post("/api/log", json=make_log(message="x"), headers=keyed("k"))
        assert other.status_code == 422
        assert other.json()["detail"][0] == {
            "field": "Idempotency-Key",
            "rule": "same_request",
            "message": other.json()["message"],
        }
        assert await stack.logs() == 1

    async def test_the_same_key_on_another_route_is_a_422(self, stack: Stack):
        await stack.http.post("/api/logs/batch", json=make_batch(1), headers=keyed("k"))
        other = await stack.http.post("/gelf", json=make_batch(1), headers=keyed("k"))
        assert other.status_code == 422

    @pytest.mark.parametrize(
        ("values", "rule"),
        [
            (['""'], "min_length"),
            (['"open'], "sf_string"),
            (['"a"b"'], "sf_string"),
            (['"tab\\n"'], "sf_string"),
            (["two words"], "sf_string"),
            (["é".encode()], "sf_string"),
            (["x" * 256], "max_length"),
            (["a", "b"], "single"),
        ],
    )
    async def test_a_malformed_key_is_a_400_naming_its_rule(
        self, stack: Stack, values: list[str | bytes], rule: str
    ):
        headers = [("Idempotency-Key", value) for value in values]
        answer = await stack.http.post("/api/log", json=make_log(), headers=headers)
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_idempotency_key"
        assert answer.json()["detail"][0]["field"] == "Idempotency-Key"
        assert answer.json()["detail"][0]["rule"] == rule
        assert await stack.logs() == 0

    async def test_a_request_refused_before_storing_frees_its_key(self, stack: Stack):
        refused = await stack.http.post(
            "/api/log", json=make_log(log_level="LOUD"), headers=keyed("k")
        )
        assert refused.status_code == 422
        fixed = await stack.http.post("/api/log", json=make_log(), headers=keyed("k"))
        assert fixed.status_code == 200
        assert "idempotent-replayed" not in fixed.headers
        assert await stack.logs() == 1


class AppliedThenLost:
    """A queue whose answer is lost after the write was applied: a Redis call that timed out
    on its way back, a commit whose process was cut off before it answered."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def put(self, records: Sequence[LogRecord], *, mark: Mark | None = None) -> list[str]:
        await self.queue.put(records, mark=mark)
        raise StoreUnavailable("the answer of the store was lost", retry_after=1)


class TestLostAnswers:
    async def test_a_503_for_a_write_that_was_applied_is_retried_without_a_duplicate(
        self, stack: Stack
    ):
        ingest = stack.app.state.services.ingest
        queue = ingest.queue
        ingest.queue = AppliedThenLost(queue)
        body = make_batch(4)
        lost = await stack.http.post("/api/logs/batch", json=body, headers=keyed("gap"))
        assert lost.status_code == 503
        ingest.queue = queue
        retried = await stack.http.post("/api/logs/batch", json=body, headers=keyed("gap"))
        assert retried.status_code == 200
        assert len(retried.json()["message_ids"]) == 4
        assert await stack.logs() == 4
        again = await stack.http.post("/api/logs/batch", json=body, headers=keyed("gap"))
        assert again.json() == retried.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert await stack.logs() == 4


class TestConcurrency:
    async def test_one_of_many_concurrent_requests_stores_the_others_replay_or_409(
        self, stack: Stack
    ):
        body = make_batch(5)
        answers = await asyncio.gather(
            *(
                stack.http.post("/api/logs/batch", json=body, headers=keyed("same"))
                for _ in range(20)
            )
        )
        statuses = {answer.status_code for answer in answers}
        assert statuses <= {200, 409}
        stored = [answer for answer in answers if answer.status_code == 200]
        assert stored
        assert all(answer.json() == stored[0].json() for answer in stored)
        for answer in answers:
            if answer.status_code == 409:
                assert answer.headers["Retry-After"] == "1"
        assert await stack.logs() == 5

    async def test_a_key_survives_a_restart(self, stack: Stack):
        body = make_batch(2)
        first = await stack.http.post("/api/logs/batch", json=body, headers=keyed("durable"))
        async with running_app(stack.settings) as app, client_of(app) as http:
            again = await http.post("/api/logs/batch", json=body, headers=keyed("durable"))
        assert again.json() == first.json()
        assert await stack.logs() == 2


class TestScope:
    async def test_two_credentials_may_use_the_same_key(self, tmp_path: Path):
        settings = secure_settings(tmp_path / "data")
        keys = [await add_key(settings, name, Scope.INGEST) for name in ("a", "b")]
        async with serving(settings) as http:
            answers = [
                await http.post(
                    "/api/log", json=make_log(), headers={"X-API-Key": key, **keyed("shared")}
                )
                for key in keys
            ]
            replay = await http.post(
                "/api/log", json=make_log(), headers={"X-API-Key": keys[0], **keyed("shared")}
            )
        assert [answer.status_code for answer in answers] == [200, 200]
        assert answers[0].json()["message_id"] != answers[1].json()["message_id"]
        assert replay.json() == answers[0].json()


async def test_the_migration_goes_down_to_0007_and_up_again(settings: Settings):
    engine = create_store_engine(settings)

    def columns(sync) -> set[str]:
        return {column["name"] for column in inspect(sync).get_columns("idempotency_keys")}

    try:
        async with engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0007")
            assert await conn.run_sync(columns) == {"key", "token", "expires_at"}
        await migrate(engine)
        async with engine.connect() as conn:
            assert {"fingerprint", "answer_body"} <= await conn.run_sync(columns)
    finally:
        await engine.dispose()
