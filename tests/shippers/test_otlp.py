"""POST /v1/logs with hand-made bodies: the mapping, partial success, and bad bodies.

The OpenTelemetry SDK's own exporter is in test_otlp_sdk.py.
"""

import base64
import gzip
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from fleetlog.api.routes.otlp import NAMED_REFUSALS
from fleetlog.auth.principals import Scope
from tests.fixtures.auth import add_key, secure_settings, serving
from tests.shippers.otlp_bodies import (
    json_attributes,
    json_record,
    json_request,
    now_ns,
    proto_record,
    proto_request,
)

JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
TRACE_ID = "5B8EFFF798038103D269B633813FC60C"
SPAN_ID = "eee19b7ec3c1b174"
# A refusal as partial_success's message names it.
NAMED = re.compile(r"log record (\d+) \(([\w.]+)\)")


async def export_json(http: httpx.AsyncClient, document: Any, **headers: str) -> dict[str, Any]:
    answer = await http.post(
        "/v1/logs", content=orjson.dumps(document), headers={**JSON, **headers}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    result: dict[str, Any] = answer.json()
    return result


async def export_proto(http: httpx.AsyncClient, body: bytes) -> ExportLogsServiceResponse:
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    answer = await http.post("/v1/logs", content=gzip.compress(body), headers=headers)
    assert answer.status_code == 200, answer.content
    assert answer.headers["content-type"] == "application/x-protobuf"
    return ExportLogsServiceResponse.FromString(answer.content)


async def stored(http: httpx.AsyncClient, q: str = "") -> list[dict[str, Any]]:
    answer = await http.get("/api/logs", params={"q": q, "limit": 1000, "order": "asc"})
    assert answer.status_code == 200, answer.text
    logs: list[dict[str, Any]] = answer.json()["data"]
    return logs


def by_message(logs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The logs by message, each message stored once."""
    messages = [log["message"] for log in logs]
    assert len(messages) == len(set(messages)), f"a record was stored twice: {messages}"
    return {log["message"]: log for log in logs}


async def stored_severities(
    http: httpx.AsyncClient, severities: list[tuple[int, str]]
) -> list[dict[str, Any]]:
    """A record exported for each (severityNumber, severityText); the stored logs, in order."""
    records = [
        json_record(f"case {i}", severityNumber=number, severityText=text)
        for i, (number, text) in enumerate(severities)
    ]
    await export_json(http, json_request(*records))
    logs = by_message(await stored(http))
    return [logs[f"case {i}"] for i in range(len(severities))]


def at_microsecond(nanos: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanos // 1000)
    return moment.isoformat().replace("+00:00", "Z")


class TestMapping:
    async def test_a_json_export_is_stored_with_the_documented_mapping(self, client):
        sent = now_ns(minutes_ago=1)
        record = json_record(
            "valve stuck on line 3",
            timeUnixNano=str(sent),
            severityNumber=13,
            severityText="WARN",
            attributes=json_attributes({"http.method": "GET", "line": 3}),
            traceId=TRACE_ID,
            spanId=SPAN_ID,
            flags=1,
            eventName="valve.stuck",
            futureField={"nested": True},
        )
        document = json_request(
            record,
            resource={"service.name": "pump-7", "host.name": "rack-2"},
            scope={"name": "pumps", "version": "1.2", "unknown": 1},
        )
        document["resourceLogs"][0]["schemaUrl"] = "https://opentelemetry.io/schemas/1.26.0"
        document["extra"] = [1, 2]

        assert await export_json(client, document) == {}

        (log,) = await stored(client)
        assert log["device_id"] == "pump-7"
        assert log["log_level"] == "WARNING"
        assert log["message"] == "valve stuck on line 3"
        assert log["created_at"] == at_microsecond(sent)
        assert log["log_data"] == {
            "attributes": {"http": {"method": "GET"}, "line": 3},
            "trace_id": TRACE_ID.lower(),
            "span_id": SPAN_ID,
            "flags": 1,
            "event_name": "valve.stuck",
            "resource": {"host": {"name": "rack-2"}},
            "scope": {"name": "pumps", "version": "1.2"},
        }

    async def test_64_bit_integers_come_as_strings_or_as_numbers(self, client):
        sent = now_ns(minutes_ago=2)
        as_text = json_record("as text", timeUnixNano=str(sent))
        as_text["attributes"] = [{"key": "count", "value": {"intValue": "9007199254740993"}}]
        as_number = json_record("as number", timeUnixNano=sent)
        as_number["attributes"] = [{"key": "count", "value": {"intValue": 9007199254740993}}]
        await export_json(client, json_request(as_text, as_number))

        logs = by_message(await stored(client))
        for message in ("as text", "as number"):
            assert logs[message]["created_at"] == at_microsecond(sent)
            assert logs[message]["log_data"]["attributes"] == {"count": 9007199254740993}

    async def test_a_structured_body_is_kept_in_log_data_and_its_json_is_the_message(self, client):
        body = {"kvlistValue": {"values": json_attributes({"user": "bob", "action": "login"})}}
        await export_json(client, json_request(json_record(body=body)))

        (log,) = await stored(client, q="bob login")
        assert log["message"] == '{"user":"bob","action":"login"}'
        assert log["log_data"]["body"] == {"user": "bob", "action": "login"}
        assert await stored(client, q="attr.body.user:bob") == [log]

    async def test_every_kind_of_value_becomes_plain_json(self, client):
        values = [
            {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\xff").decode()}},
            {"key": "ratio", "value": {"doubleValue": 0.25}},
            {"key": "broken", "value": {"doubleValue": "NaN"}},
            {"key": "ok", "value": {"boolValue": True}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {}]}}},
            {"key": "zone", "value": {"stringValue": "north"}},
            {"key": "zone.id", "value": {"intValue": "4"}},
            {"key": "a..b", "value": {"stringValue": "kept whole"}},
        ]
        await export_json(client, json_request(json_record(attributes=values)))

        (log,) = await stored(client)
        assert log["log_data"]["attributes"] == {
            "raw": "AP8=",
            "ratio": 0.25,
            "broken": "NaN",
            "ok": True,
            "tags": ["a", None],
            "zone": "north",
            "zone.id": 4,
            "a..b": "kept whole",
        }

    async def test_levels_come_from_the_severity_number_else_its_text_else_info(self, client):
        cases = [
            (1, "", "DEBUG"),
            (8, "", "DEBUG"),
            (9, "", "INFO"),
            (16, "", "WARNING"),
            (17, "", "ERROR"),
            (21, "", "CRITICAL"),
            (24, "", "CRITICAL"),
            (17, "info", "ERROR"),
            (0, "Warning", "WARNING"),
            (0, "WARN2", "WARNING"),
            (0, "fatal", "CRITICAL"),
            (0, "verbose", "INFO"),
            (0, "", "INFO"),
        ]
        logs = await stored_severities(client, [(number, text) for number, text, _ in cases])
        assert [log["log_level"] for log in logs] == [level for _, _, level in cases]

    async def test_log_data_keeps_a_severity_only_where_it_says_more_than_the_level(self, client):
        cases = [
            (13, "WARN", {}),
            (9, "INFO", {}),
            (17, "error", {}),
            (21, "CRITICAL", {}),
            (0, "Warning", {}),
            (5, "", {}),
            (1, "TRACE", {"severity_number": 1, "severity_text": "TRACE"}),
            (10, "INFO2", {"severity_number": 10, "severity_text": "INFO2"}),
            (9, "notice", {"severity_text": "notice"}),
            (17, "info", {"severity_text": "info"}),
            (0, "verbose", {"severity_text": "verbose"}),
            (30, "", {"severity_number": 30}),
        ]
        logs = await stored_severities(client, [(number, text) for number, text, _ in cases])
        assert [log["log_data"] for log in logs] == [kept for _, _, kept in cases]

    async def test_event_time_is_the_record_time_else_observed_else_received(self, client):
        timed, observed = now_ns(minutes_ago=3), now_ns(minutes_ago=2)
        before = datetime.now(UTC)
        records = [
            json_record("timed", timeUnixNano=str(timed), observedTimeUnixNano=str(observed)),
            json_record("observed", timeUnixNano="0", observedTimeUnixNano=str(observed)),
            {"body": {"stringValue": "untimed"}},
        ]
        await export_json(client, json_request(*records))

        logs = by_message(await stored(client))
        assert logs["timed"]["created_at"] == at_microsecond(timed)
        assert logs["observed"]["created_at"] == at_microsecond(observed)
        untimed = logs["untimed"]
        assert untimed["created_at"] == untimed["received_at"]
        assert datetime.fromisoformat(untimed["created_at"]) >= before

    async def test_attributes_are_found_by_their_dotted_names(self, client):
        record = json_record(
            "door opened", attributes=json_attributes({"http.method": "GET"}), traceId=TRACE_ID
        )
        resource = {"service.name": "door-1", "host.name": "rack-9"}
        await export_json(client, json_request(record, resource=resource))
        await export_json(client, json_request(json_record("pump started")))

        for q in (
            "attr.attributes.http.method:GET",
            "attr.resource.host.name:rack-9",
            f"attr.trace_id:{TRACE_ID.lower()}",
            "device:door-1",
        ):
            assert [log["message"] for log in await stored(client, q=q)] == ["door opened"]


class TestDevice:
    @pytest.mark.parametrize(
        ("resource", "device"),
        [
            ({"device.id": "cam-7", "service.name": "vision", "host.name": "rack-2"}, "cam-7"),
            ({"service.name": "vision", "host.name": "rack-2"}, "vision"),
            ({"host.name": "rack-2"}, "rack-2"),
            ({"service.name": "unknown_service:python", "host.name": "rack-2"}, "rack-2"),
            ({"service.name": "unknown_service"}, "unknown_service"),
        ],
    )
    async def test_the_resource_names_the_device(self, client, resource, device):
        await export_json(client, json_request(json_record(), resource=resource))
        assert [log["device_id"] for log in await stored(client)] == [device]


class TestPartialSuccess:
    async def test_refused_records_are_counted_and_named_while_the_others_are_stored(self, client):
        document = json_request(
            json_record("fresh"),
            json_record("stale", timeUnixNano=str(now_ns(minutes_ago=8 * 24 * 60))),
            json_record("ahead", timeUnixNano=str(now_ns(minutes_ago=-60))),
            json_record("also fresh"),
        )
        document["resourceLogs"] += [
            json_request(json_record("long name"), resource={"service.name": "x" * 51})[
                "resourceLogs"
            ][0],
            json_request(json_record("nameless"), resource={"region": "eu"})["resourceLogs"][0],
        ]

        answer = await export_json(client, document)

        partial = answer["partialSuccess"]
        assert partial["rejectedLogRecords"] == "4"
        message = partial["errorMessage"]
        assert message.startswith(
            "4 of 6 log records were refused: log record 1 (event_time_window)"
        )
        assert "log record 2 (event_time_window)" in message
        assert "log record 4 (device_id): the device id must have 1 to 50 characters" in message
        assert message.endswith("; and 1 more")
        assert sorted(by_message(await stored(client))) == ["also fresh", "fresh"]

    async def test_protobuf_answers_partial_success_in_protobuf(self, client):
        request = proto_request(
            proto_record("kept"), proto_record("stale", time_unix_nano=now_ns(60 * 24 * 30))
        )
        nameless = proto_request(proto_record("nameless"), resource={"region": "eu"})
        request.resource_logs.extend(nameless.resource_logs)

        answer = await export_proto(client, request.SerializeToString())

        assert answer.partial_success.rejected_log_records == 2
        assert "log record 1 (event_time_window)" in answer.partial_success.error_message
        assert "log record 2 (device_id): the resource names no device" in (
            answer.partial_success.error_message
        )
        assert [log["message"] for log in await stored(client)] == ["kept"]

    async def test_a_request_without_records_is_a_full_success(self, client):
        assert await export_json(client, {}) == {}
        assert await export_proto(client, b"") == ExportLogsServiceResponse()
        assert await stored(client) == []


class TestLogDataRules:
    """The mapping checks the log_data it builds as it goes, a scope's resource and scope once,
    and leaves the rest to the rules' walk: either way each record meets the same rules as the
    reference API's log_data, and the count of its keys includes the shared part."""

    async def test_a_record_that_breaks_a_rule_is_refused_by_name_and_the_others_stored(
        self, client
    ):
        deep = ".".join(["k"] * 20)
        cases = [
            ("plain", {"attributes": json_attributes({"zone": "north", "n": 4})}, None),
            ("nested", {"attributes": json_attributes({"a": {"b": {"c": 1}}})}, None),
            ("dotted", {"attributes": json_attributes({".".join(["k"] * 12): 1})}, None),
            ("too deep", {"attributes": json_attributes({deep: 1})}, "log_data.max_depth"),
            ("nul in a key", {"attributes": json_attributes({"a\x00": 1})}, "log_data.no_nul"),
            ("nul in a value", {"attributes": json_attributes({"a": "b\x00"})}, "log_data.no_nul"),
            ("nul nested", {"attributes": json_attributes({"a": ["\x00"]})}, "log_data.no_nul"),
            ("nul in the severity", {"severityText": "IN\x00FO"}, "log_data.no_nul"),
            ("nul in the event name", {"eventName": "x\x00"}, "log_data.no_nul"),
        ]
        records = [json_record(name, **fields) for name, fields, _ in cases]

        answer = await export_json(client, json_request(*records))

        refused = [(index, rule) for index, (_, _, rule) in enumerate(cases) if rule]
        message = answer["partialSuccess"]["errorMessage"]
        assert message.startswith(f"{len(refused)} of {len(cases)} log records were refused")
        named = [(int(index), rule) for index, rule in NAMED.findall(message)]
        assert named == refused[:NAMED_REFUSALS]
        assert sorted(by_message(await stored(client))) == sorted(
            name for name, _, rule in cases if rule is None
        )

    @pytest.mark.parametrize("dotted", [False, True])
    async def test_the_key_limit_counts_the_resource_and_every_nested_key(self, client, dotted):
        # log_data: resource (1 + 500 keys), attributes (1 + n).
        resource = {"service.name": "pump-7", **{f"r{i}": i for i in range(500)}}
        # "a.b.c" and "a.x" nest as {"a": {"b": {"c"}, "x"}}: five keys.
        nested = {"a.b.c": 1, "a.b.d": 2, "a.x": 3} if dotted else {}
        flat = 498 - (5 if dotted else 0)
        at_limit = {**nested, **{f"f{i}": i for i in range(flat)}}
        over = {**at_limit, "one more": 1}
        records = [
            json_record("at the limit", attributes=json_attributes(at_limit)),
            json_record("over it", attributes=json_attributes(over)),
        ]

        answer = await export_json(client, json_request(*records, resource=resource))

        message = answer["partialSuccess"]["errorMessage"]
        assert message.startswith(
            "1 of 2 log records were refused: log record 1 (log_data.max_keys)"
        )
        (log,) = await stored(client)
        assert log["message"] == "at the limit"


def rpc_status(answer: httpx.Response) -> status_pb2.Status:
    """The google.rpc.Status of an error answer, read with googleapis' own classes."""
    if answer.headers["content-type"] == "application/x-protobuf":
        return status_pb2.Status.FromString(answer.content)
    return json_format.Parse(answer.content, status_pb2.Status())


def violations(status: status_pb2.Status) -> list[tuple[str, str]]:
    (detail,) = status.details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    return [(item.field, item.reason) for item in bad_request.field_violations]


VALID = proto_request(proto_record("never stored")).SerializeToString()
LOG_RECORDS = "resourceLogs[0].scopeLogs[0].logRecords[0]"
RECORDS = "resourceLogs.scopeLogs.logRecords"


class TestBadBodies:
    @pytest.mark.parametrize(
        ("headers", "body", "field", "reason"),
        [
            (PROTOBUF, VALID[: len(VALID) // 2], "body", "protobuf"),
            (PROTOBUF, b"\xff\xff\xff", "body", "protobuf"),
            (JSON, b'{"resourceLogs": [', "body", "json_invalid"),
            (JSON, b"[]", "body", "json"),
            (JSON, b'{"resourceLogs": {"scopeLogs": []}}', "resourceLogs", "json"),
            (
                JSON,
                orjson.dumps(json_request(json_record(attributes={"a": 1}))),
                f"{RECORDS}.attributes",
                "json",
            ),
            (
                JSON,
                orjson.dumps(json_request(json_record(timeUnixNano="soon"))),
                f"{RECORDS}.timeUnixNano",
                "json",
            ),
            (
                JSON,
                orjson.dumps(json_request(json_record(body={"stringValue": 5}))),
                f"{RECORDS}.body.stringValue",
                "json",
            ),
            (
                JSON,
                orjson.dumps(json_request(json_record(traceId="W4739/eAOBA9JptjOBP8YM"))),
                f"{LOG_RECORDS}.traceId",
                "hex",
            ),
            (
                {**JSON, "Content-Encoding": "gzip"},
                gzip.compress(orjson.dumps(json_request(json_record())))[:-12],
                "body",
                "",
            ),
        ],
    )
    async def test_a_bad_body_is_a_400_status_and_stores_nothing(
        self, client, headers, body, field, reason
    ):
        answer = await client.post("/v1/logs", content=body, headers=headers)

        assert answer.status_code == 400
        assert answer.headers["content-type"] == headers["Content-Type"]
        status = rpc_status(answer)
        assert status.code == 3
        assert status.message
        if reason:
            assert violations(status) == [(field, reason)]
        assert await stored(client) == []

    async def test_the_json_parser_says_why_it_could_not_read_a_field(self, client):
        body = orjson.dumps(json_request(json_record(timeUnixNano="soon")))
        answer = await client.post("/v1/logs", content=body, headers=JSON)
        assert rpc_status(answer).message == (
            f"{RECORDS}.timeUnixNano is not OTLP/JSON: "
            "invalid literal for int() with base 10: 'soon'"
        )

    async def test_a_content_type_that_is_not_otlp_is_a_415(self, client):
        body = orjson.dumps(json_request(json_record()))
        answer = await client.post("/v1/logs", content=body, headers={"Content-Type": "text/plain"})
        assert answer.status_code == 415
        assert violations(rpc_status(answer)) == [("Content-Type", "one_of")]
        assert await stored(client) == []


class TestCredentials:
    async def test_a_key_is_needed_and_the_rate_limit_answers_429_with_retry_after(self, tmp_path):
        settings = secure_settings(tmp_path / "data", host="0.0.0.0")
        key = await add_key(settings, "shipper", Scope.INGEST, rate=0.01, burst=1)
        body = gzip.compress(proto_request(proto_record()).SerializeToString())
        headers = {**PROTOBUF, "Content-Encoding": "gzip"}
        async with serving(settings) as http:
            refused = await http.post("/v1/logs", content=body, headers=headers)
            assert refused.status_code == 401

            accepted = await http.post(
                "/v1/logs", content=body, headers={**headers, "X-API-Key": key}
            )
            assert accepted.status_code == 200
            assert ExportLogsServiceResponse.FromString(accepted.content) == (
                ExportLogsServiceResponse()
            )

            limited = await http.post(
                "/v1/logs", content=body, headers={**headers, "X-API-Key": key}
            )
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) >= 1

    async def test_a_key_bound_to_a_device_prefix_refuses_other_devices_records(self, tmp_path):
        settings = secure_settings(tmp_path / "data")
        key = await add_key(settings, "pumps", Scope.INGEST, device_prefix="pump-")
        reader = await add_key(settings, "reader", Scope.READ)
        document = json_request(json_record("mine"))
        document["resourceLogs"] += json_request(
            json_record("theirs"), resource={"service.name": "cam-1"}
        )["resourceLogs"]
        async with serving(settings) as http:
            answer = await export_json(http, document, **{"X-API-Key": key})
            assert answer["partialSuccess"]["rejectedLogRecords"] == "1"
            assert "(device_prefix)" in answer["partialSuccess"]["errorMessage"]
            http.headers["X-API-Key"] = reader
            assert [log["message"] for log in await stored(http)] == ["mine"]
