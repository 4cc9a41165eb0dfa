"""Elasticsearch bulk: the mapping, bad bodies, per-item answers, `_id` as an idempotency key,
the handshake, and elasticsearch-py against a real fleetlog, on both stores."""

import asyncio
import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch, helpers

from fleetlog.auth.principals import Scope
from fleetlog.errors import QueueFull
from fleetlog.keys import Keys
from tests.api.test_pipeline_query import stored_and_acknowledged
from tests.fixtures.app import client_of, running_app
from tests.fixtures.auth import add_key, secure_settings, serving
from tests.fixtures.pipeline import running_worker, sample, wait_for
from tests.fixtures.process import Server, running_server

NDJSON = {"Content-Type": "application/x-ndjson"}
SHIPPED = "fleetlog_shipped_records_total"


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def ndjson(*lines: Any) -> str:
    """Lines of a bulk body: objects as JSON, text as it is."""
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


async def bulk(
    http: httpx.AsyncClient, *lines: Any, path: str = "/_bulk", **headers: str
) -> httpx.Response:
    return await http.post(path, content=ndjson(*lines), headers={**NDJSON, **headers})


def statuses(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [next(iter(item.values()))["status"] for item in answer.json()["items"]]


def errors_of(answer: httpx.Response) -> list[dict[str, Any]]:
    """Each item's error, `{}` for an item without one."""
    return [next(iter(item.values())).get("error", {}) for item in answer.json()["items"]]


async def found(http: httpx.AsyncClient, q: str = "", **headers: str) -> list[dict[str, Any]]:
    answer = await http.get("/api/logs", params={"q": q, "limit": 1000}, headers=headers)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


def create(doc_id: str | None = None, index: str = "logs-app", op: str = "create") -> dict:
    meta = {"_index": index} | ({} if doc_id is None else {"_id": doc_id})
    return {op: meta}


def source(device: str = "cam-1", message: str = "pump stuck", **fields: Any) -> dict:
    return {"host": {"name": device}, "message": message, "@timestamp": ago(1), **fields}


class TestMapping:
    async def test_a_source_maps_onto_the_record(self, client):
        when = ago(3)
        document = {
            "@timestamp": when,
            "host": {"name": "cam-1", "ip": "10.0.0.7"},
            "log": {"level": "warn", "logger": "pump"},
            "message": "pump 3 stuck",
            "service": {"name": "pumps"},
        }
        answer = await bulk(client, create("a1"), document)
        assert statuses(answer) == [201]
        (row,) = await found(client, "device:cam-1")
        assert row["device_id"] == "cam-1"
        assert row["log_level"] == "WARNING"
        assert row["message"] == "pump 3 stuck"
        assert datetime.fromisoformat(row["created_at"]) == datetime.fromisoformat(when)
        assert row["log_data"] == {
            "host": {"ip": "10.0.0.7"},
            "log": {"logger": "pump"},
            "service": {"name": "pumps"},
            "_index": "logs-app",
            "_id": "a1",
        }
        assert await found(client, "attr._index:logs-app attr._id:a1 stuck") == [row]

    @pytest.mark.parametrize(
        "fields",
        [
            {"host": {"name": "dev-9"}},
            {"host.name": "dev-9"},
            {"host": "dev-9"},
            {"agent": {"name": "dev-9"}},
            {"agent.name": "dev-9"},
            {"host": {"ip": "10.0.0.1"}, "agent": {"name": "dev-9"}},
        ],
    )
    async def test_the_device_is_host_name_host_or_agent_name(self, client, fields):
        assert statuses(await bulk(client, create(), {"message": "m", **fields})) == [201]
        (row,) = await found(client)
        assert row["device_id"] == "dev-9"
        assert "name" not in row["log_data"].get("host", {})
        assert "agent" not in row["log_data"]

    @pytest.mark.parametrize(
        ("fields", "level", "kept"),
        [
            ({"log.level": "error"}, "ERROR", {}),
            ({"log": {"level": "DEBUG"}}, "DEBUG", {}),
            ({"level": "warn"}, "WARNING", {}),
            ({"severity": "fatal"}, "CRITICAL", {}),
            ({}, "INFO", {}),
            ({"level": "chatty"}, "INFO", {"level": "chatty"}),
        ],
    )
    async def test_the_level_is_log_level_level_or_severity(self, client, fields, level, kept):
        await bulk(client, create(), {"host": "d", "message": "m", **fields})
        (row,) = await found(client)
        assert row["log_level"] == level
        assert row["log_data"] == {**kept, "_index": "logs-app"}

    async def test_timestamps_in_epoch_millis_and_none(self, client):
        millis = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
        lines = [
            create(),
            {"host": "a", "message": "m", "@timestamp": millis},
            create(),
            {"host": "b", "message": "m", "@timestamp": str(millis)},
            create(),
            {"host": "c", "message": "m"},
        ]
        assert statuses(await bulk(client, *lines)) == [201, 201, 201]
        times = {row["device_id"]: row for row in await found(client)}
        for device in "ab":
            stored = datetime.fromisoformat(times[device]["created_at"])
            assert stored == datetime.fromtimestamp(millis / 1000, UTC)
        assert times["c"]["created_at"] == times["c"]["received_at"]

    async def test_the_index_of_the_path_unless_the_action_names_one(self, client):
        lines = [{"index": {}}, source("a"), create(index="other"), source("b")]
        assert statuses(await bulk(client, *lines, path="/logs-path/_bulk")) == [201, 201]
        indexes = {row["device_id"]: row["log_data"]["_index"] for row in await found(client)}
        assert indexes == {"a": "logs-path", "b": "other"}

    async def test_type_and_other_metadata_are_ignored(self, client):
        action = {"index": {"_index": "logs", "_type": "_doc", "routing": "r", "pipeline": "p"}}
        assert statuses(await bulk(client, action, source())) == [201]
        (row,) = await found(client)
        assert row["log_data"] == {"_index": "logs"}


class TestBadBodies:
    """A body that is not a bulk request: a 400 in Elasticsearch's shape, nothing stored."""

    @pytest.mark.parametrize(
        ("lines", "kind", "words"),
        [
            ([create("1"), source(), create("2")], "illegal_argument_exception", "no source"),
            (["{not json", source()], "x_content_parse_exception", "line [1]"),
            ([create("1"), source(), "[1, 2]", source()], "illegal_argument_exception", "[3]"),
            ([{"upsert": {}}, source()], "illegal_argument_exception", "found [upsert]"),
            ([{"index": "logs"}, source()], "illegal_argument_exception", "must be an object"),
            ([{"index": {"_index": 7}}, source()], "illegal_argument_exception", "_index"),
            ([{"index": {}}, source()], "action_request_validation_exception", "index is missing"),
            ([create(""), source()], "action_request_validation_exception", "_id"),
            ([create("x" * 513), source()], "action_request_validation_exception", "513"),
            ([], "action_request_validation_exception", "no requests added"),
        ],
    )
    async def test_refused_whole(self, client, lines, kind, words):
        answer = await bulk(client, *lines)
        assert answer.status_code == 400
        assert answer.headers["x-elastic-product"] == "Elasticsearch"
        body = answer.json()
        assert body["status"] == 400
        assert body["error"]["type"] == kind
        assert body["error"]["root_cause"][0]["type"] == kind
        assert words in body["error"]["reason"]
        assert await found(client) == []

    async def test_a_path_index_breaking_the_naming_rules(self, client):
        answer = await bulk(client, {"index": {}}, source(), path="/Logs/_bulk")
        assert answer.status_code == 400
        assert answer.json()["error"]["type"] == "invalid_index_name_exception"

    async def test_a_content_type_that_is_not_json_is_a_415(self, client):
        answer = await bulk(client, create(), source(), **{"Content-Type": "text/plain"})
        assert answer.status_code == 415
        assert answer.json()["error"]["type"] == "media_type_header_exception"
        assert await found(client) == []

    async def test_a_truncated_gzip_body_is_a_400(self, client):
        body = gzip.compress(ndjson(create(), source()).encode())[:-8]
        answer = await client.post(
            "/_bulk", content=body, headers={**NDJSON, "Content-Encoding": "gzip"}
        )
        assert answer.status_code == 400
        assert await found(client) == []


class TestItems:
    async def test_refused_items_name_their_reason_and_the_others_are_stored(self, client):
        lines = [
            create("ok-1"),
            source("ok"),
            create("no-device"),
            {"message": "whose?"},
            create("bad-time"),
            source(**{"@timestamp": "yesterday-ish"}),
            create("too-old"),
            source(**{"@timestamp": ago(8 * 24 * 60)}),
            {"delete": {"_index": "logs-app", "_id": "ok-1"}},
            {"update": {"_index": "logs-app", "_id": "ok-1"}},
            {"doc": {"message": "changed"}},
            create("not-json"),
            "{broken",
            create("list"),
            "[1]",
            create("upper", index="Logs"),
            source(),
            create("ok-2"),
            source("ok"),
        ]
        answer = await bulk(client, *lines)
        assert statuses(answer) == [201, 400, 400, 400, 400, 400, 400, 400, 400, 201]
        assert answer.json()["errors"] is True
        errors = errors_of(answer)
        assert errors[0] == {}
        assert errors[1]["rule"] == "device_id"
        assert "host.name" in errors[1]["reason"]
        assert "@timestamp" in errors[2]["reason"]
        assert errors[3]["rule"] == "event_time_window"
        assert "immutable" in errors[4]["reason"]
        assert "[update]" in errors[5]["reason"]
        assert errors[6]["type"] == "document_parsing_exception"
        assert "not a JSON object" in errors[7]["reason"]
        assert errors[8]["type"] == "invalid_index_name_exception"
        stored = await found(client)
        assert sorted(row["log_data"]["_id"] for row in stored) == ["ok-1", "ok-2"]

    async def test_an_answer_in_elasticsearch_shape(self, client):
        answer = await bulk(client, create("d1"), source(), {"index": {"_index": "x"}}, source())
        assert answer.headers["x-elastic-product"] == "Elasticsearch"
        body = answer.json()
        assert set(body) == {"took", "errors", "items"}
        assert body["errors"] is False
        first, second = body["items"]
        assert first == {
            "create": {
                "_index": "logs-app",
                "_id": "d1",
                "_version": 1,
                "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "status": 201,
            }
        }
        assert second["index"]["_id"]
        assert second["index"]["result"] == "created"

    @pytest.mark.parametrize(
        "content_type",
        [
            "application/x-ndjson",
            "application/json; charset=UTF-8",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        ],
    )
    async def test_the_content_types_of_the_clients(self, client, content_type):
        answer = await bulk(client, create(), source(), **{"Content-Type": content_type})
        assert statuses(answer) == [201]

    async def test_the_compatibility_media_type_is_answered_when_asked(self, client):
        accept = "application/vnd.elasticsearch+json; compatible-with=9"
        answer = await bulk(client, create(), source(), Accept=accept)
        assert answer.headers["content-type"] == (
            "application/vnd.elasticsearch+json;compatible-with=9"
        )

    async def test_a_gzip_body(self, client):
        body = gzip.compress(ndjson(create("z"), source("gz")).encode())
        answer = await client.post(
            "/_bulk", content=body, headers={**NDJSON, "Content-Encoding": "gzip"}
        )
        assert statuses(answer) == [201]
        assert [row["device_id"] for row in await found(client)] == ["gz"]

    async def test_a_full_backlog_rejects_every_item_and_keeps_no_claim(
        self, app, client, monkeypatch
    ):
        async def full(*args: Any, **kwargs: Any) -> None:
            raise QueueFull("the backlog is full", retry_after=1)

        lines = [create("k1"), source(), create(), source(), create("bad"), {"message": "x"}]
        with monkeypatch.context() as patch:
            patch.setattr(app.state.services.ingest, "ship", full)
            answer = await bulk(client, *lines)
        assert statuses(answer) == [429, 429, 400]
        assert errors_of(answer)[0] == {
            "type": "es_rejected_execution_exception",
            "reason": "the backlog is full",
            "index": "logs-app",
        }
        assert await found(client) == []
        assert statuses(await bulk(client, *lines)) == [201, 201, 400]


class TestIdempotency:
    async def test_a_retried_bulk_stores_nothing_twice(self, client):
        lines = [
            create("c1"),
            source("a"),
            create("i1", op="index"),
            source("b"),
            create(None),
            source("c"),
        ]
        assert statuses(await bulk(client, *lines)) == [201, 201, 201]
        duplicates = sample(SHIPPED, protocol="elastic", outcome="duplicate")
        retry = await bulk(client, *lines)
        assert statuses(retry) == [409, 200, 201]
        assert sample(SHIPPED, protocol="elastic", outcome="duplicate") == duplicates + 2
        conflict = errors_of(retry)[0]
        assert conflict["type"] == "version_conflict_engine_exception"
        assert retry.json()["items"][1]["index"]["result"] == "noop"
        devices = sorted(row["device_id"] for row in await found(client))
        assert devices == ["a", "b", "c", "c"]

    async def test_one_id_twice_in_a_bulk_is_stored_once(self, client):
        lines = [create("same"), source("a"), create("same", op="index"), source("b")]
        lines += [create("same"), source("c")]
        assert statuses(await bulk(client, *lines)) == [201, 200, 409]
        assert [row["device_id"] for row in await found(client)] == ["a"]

    async def test_an_id_is_a_key_within_its_index(self, client):
        lines = [create("1", index="one"), source("a"), create("1", index="two"), source("b")]
        assert statuses(await bulk(client, *lines)) == [201, 201]

    async def test_an_id_in_flight_is_retried_later(self, app, client):
        registry = app.state.services.idempotency
        claim = await registry.claim(["elastic/logs-app/busy"])
        answer = await bulk(client, create("busy"), source("a"), create("free"), source("b"))
        assert statuses(answer) == [429, 201]
        rejected = errors_of(answer)[0]
        assert rejected["type"] == "es_rejected_execution_exception"
        await registry.release(claim, ["elastic/logs-app/busy"])
        answer = await bulk(client, create("busy"), source("a"), create("free"), source("b"))
        assert statuses(answer) == [201, 409]
        assert sorted(row["device_id"] for row in await found(client)) == ["a", "b"]

    async def test_a_refused_record_leaves_its_id_free(self, client):
        assert statuses(await bulk(client, create("fix-me"), {"message": "no host"})) == [400]
        assert statuses(await bulk(client, create("fix-me"), source("fixed"))) == [201]


class TestHandshake:
    @pytest.fixture
    def secured(self, tmp_path: Path):
        return secure_settings(tmp_path / "data")

    async def test_root_answers_as_elasticsearch_and_as_fleetlog(self, client):
        for answer in (await client.get("/"), await client.head("/")):
            assert answer.status_code == 200
            assert answer.headers["x-elastic-product"] == "Elasticsearch"
        body = (await client.get("/")).json()
        assert body["version"]["number"].startswith("8.")
        assert body["version"]["build_flavor"] == "default"
        assert body["tagline"] == "You Know, for Search"
        assert {"name", "cluster_name", "cluster_uuid"} <= set(body)
        assert body["service"] == "fleetlog"
        assert body["endpoints"]["elasticsearch_bulk"] == "POST /_bulk"

    @pytest.mark.parametrize(
        "path",
        [
            "/_cluster/health",
            "/_license",
            "/_xpack",
            "/_nodes",
            "/_nodes/_local/ingest",
            "/_ilm/policy",
            "/_index_template",
            "/_component_template",
            "/_template",
            "/_ingest/pipeline",
        ],
    )
    async def test_setup_calls_need_an_ingest_key(self, secured, path):
        key = await add_key(secured, "filebeat", Scope.INGEST)
        reader = await add_key(secured, "reader", Scope.READ)
        async with serving(secured) as http:
            assert (await http.get(path)).status_code == 401
            assert (await http.get(path, headers=basic(reader))).status_code == 403
            answer = await http.get(path, headers=basic(key))
            assert answer.status_code == 200
            assert answer.headers["x-elastic-product"] == "Elasticsearch"
            assert (await http.head(path, headers=basic(key))).status_code == 200

    async def test_what_clients_look_for_is_missing_and_what_they_put_is_taken(self, client):
        for path in (
            "/_ilm/policy/filebeat",
            "/_index_template/filebeat-8.17.0",
            "/_template/logstash",
            "/_component_template/logs",
            "/_ingest/pipeline/filebeat-8.17.0-system-syslog",
        ):
            missing = await client.get(path)
            assert missing.status_code == 404
            assert missing.json()["error"]["type"] == "resource_not_found_exception"
            assert (await client.head(path)).status_code == 404
            put = await client.put(path, json={"policy": {"phases": {}}})
            assert put.status_code == 200
            assert put.json() == {"acknowledged": True}
        health = (await client.get("/_cluster/health")).json()
        assert health["status"] == "green"
        assert (await client.get("/_license")).json()["license"]["status"] == "active"

    async def test_a_key_bound_to_a_prefix_gets_a_403_item_for_other_devices(self, secured):
        key = await add_key(secured, "cams", Scope.INGEST, device_prefix="cam-")
        async with serving(secured) as http:
            lines = [create("1"), source("cam-1"), create("2"), source("door-1")]
            answer = await bulk(http, *lines, **basic(key))
            assert statuses(answer) == [201, 403]
            refused = errors_of(answer)[1]
            assert refused["type"] == "security_exception"
            assert refused["rule"] == "device_prefix"
            assert statuses(await bulk(http, *lines[2:], **basic(key))) == [403]

    async def test_a_bulk_without_credentials_is_refused(self, secured):
        await add_key(secured, "filebeat", Scope.INGEST)
        async with serving(secured) as http:
            assert (await bulk(http, create(), source())).status_code == 401


def basic(key: str, user: str = "elastic") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_pipeline_mode_maps_stores_once_and_remembers_ids_in_redis(pipeline, redis):
    lines = [
        create("p1"),
        source("edge-1", "valve open", **{"log.level": "error", "site": "north"}),
        create("p2"),
        source("edge-2", "valve shut"),
        create(None),
        {"message": "no device"},
    ]
    async with (
        running_app(pipeline) as app,
        client_of(app) as http,
        running_worker(pipeline),
    ):
        assert statuses(await bulk(http, *lines)) == [201, 201, 400]
        assert statuses(await bulk(http, *lines)) == [409, 409, 400]
        await wait_for(stored_and_acknowledged(app), what="the bulk stored")
        rows = await found(http, "valve")
        assert sorted(row["log_data"]["_id"] for row in rows) == ["p1", "p2"]
        (edge,) = await found(http, "device:edge-1 attr.site:north attr._index:logs-app")
        assert edge["log_level"] == "ERROR"
        assert edge["message"] == "valve open"
        assert edge["log_data"] == {"site": "north", "_index": "logs-app", "_id": "p1"}
    names = await redis.keys(Keys(pipeline.redis_namespace).idempotency("*"))
    assert len(names) == 2
    assert {await redis.get(name) for name in names} == {b"s"}


class TestElasticsearchPy:
    """The official client against a real fleetlog process, with Basic auth as Beats send it."""

    @pytest.fixture
    def keys(self, tmp_path: Path) -> dict[str, str]:
        settings = secure_settings(tmp_path / "data")

        async def make() -> dict[str, str]:
            return {
                "ingest": await add_key(settings, "shipper", Scope.INGEST),
                "read": await add_key(settings, "reader", Scope.READ),
            }

        return asyncio.run(make())

    @pytest.fixture
    def server(self, tmp_path: Path, keys) -> Iterator[Server]:
        with running_server(tmp_path / "data") as running:
            yield running

    def client(self, server: Server, keys: dict[str, str]) -> Elasticsearch:
        return Elasticsearch(server.url, basic_auth=("filebeat", keys["ingest"]))

    def stored(self, server: Server, keys: dict[str, str], q: str) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{server.url}/api/logs",
            params={"q": q, "limit": 1000},
            headers={"Authorization": f"Bearer {keys['read']}"},
        )
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()["data"]
        return rows

    def documents(self, count: int, *, op: str = "create") -> list[dict[str, Any]]:
        return [
            {
                "_op_type": op,
                "_index": "logs-py",
                "_id": f"doc-{n}",
                "_source": {
                    "@timestamp": ago(2),
                    "host": {"name": f"py-{n % 3}"},
                    "log": {"level": "warning"},
                    "message": f"reading {n} out of range",
                    "sensor": {"value": n},
                },
            }
            for n in range(count)
        ]

    def test_the_product_check_passes(self, server, keys):
        es = self.client(server, keys)
        assert es.info()["version"]["number"].startswith("8.")
        assert es.cluster.health()["status"] == "green"

    def test_a_retried_bulk_of_creates_stores_nothing_twice(self, server, keys):
        es = self.client(server, keys)
        assert helpers.bulk(es, self.documents(50)) == (50, [])
        success, errors = helpers.bulk(es, self.documents(50), raise_on_error=False)
        assert success == 0
        assert {error["create"]["status"] for error in errors} == {409}
        rows = self.stored(server, keys, "attr._index:logs-py")
        assert sorted(row["log_data"]["_id"] for row in rows) == sorted(
            f"doc-{n}" for n in range(50)
        )
        row = next(row for row in rows if row["log_data"]["_id"] == "doc-4")
        assert (row["device_id"], row["log_level"]) == ("py-1", "WARNING")
        assert row["message"] == "reading 4 out of range"
        assert row["log_data"] == {"sensor": {"value": 4}, "_index": "logs-py", "_id": "doc-4"}

    def test_a_retried_bulk_of_index_actions_succeeds_and_stores_once(self, server, keys):
        es = self.client(server, keys)
        assert helpers.bulk(es, self.documents(20, op="index")) == (20, [])
        assert helpers.bulk(es, self.documents(20, op="index")) == (20, [])
        assert len(self.stored(server, keys, "attr._index:logs-py")) == 20

    def test_refused_items_are_reported_and_the_rest_stored(self, server, keys):
        es = self.client(server, keys)
        actions = self.documents(3)
        del actions[1]["_source"]["host"]
        success, errors = helpers.bulk(es, actions, raise_on_error=False)
        assert success == 2
        ((error,),) = [list(error.values()) for error in errors]
        assert error["status"] == 400
        assert "host.name" in error["error"]["reason"]
        assert len(self.stored(server, keys, "attr._index:logs-py")) == 2

    def test_ids_are_remembered_across_a_restart(self, tmp_path: Path, server, keys):
        es = self.client(server, keys)
        assert helpers.bulk(es, self.documents(10)) == (10, [])
        server.stop()
        with running_server(tmp_path / "data") as again:
            es = self.client(again, keys)
            success, errors = helpers.bulk(es, self.documents(10), raise_on_error=False)
            assert (success, len(errors)) == (0, 10)
            assert len(self.stored(again, keys, "attr._index:logs-py")) == 10
