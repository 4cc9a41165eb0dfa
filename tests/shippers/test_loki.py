"""POST /loki/api/v1/push: Loki's JSON and protobuf pushes, mapped onto fleetlog's records.

Every test reads back what was stored through the query API (`GET /api/logs`), and checks that
each accepted entry is there exactly once, with the mapping of docs/protocols.md.
"""

import asyncio
import gzip
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cramjam
import httpx
import pytest
from logging_loki import LokiHandler

from fleetlog.auth.principals import Scope
from fleetlog.config import Settings
from fleetlog.records import MAX_LOG_DATA_KEYS
from fleetlog.shippers.loki_push_pb2 import EntryAdapter, PushRequest, StreamAdapter
from tests.api.test_pipeline_query import stored_and_acknowledged
from tests.fixtures.app import client_of, migrated, running_app
from tests.fixtures.auth import add_key, bearer, secure_settings, serving
from tests.fixtures.pipeline import pipeline_settings, running_worker, sample, wait_for
from tests.fixtures.process import running_server

PUSH = "/loki/api/v1/push"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@dataclass
class Entry:
    ns: int
    line: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    labels: dict[str, str]
    entries: list[Entry]


def at(minutes_ago: float, *, sub_us_ns: int = 0) -> int:
    """An event time in nanoseconds, on a whole microsecond (plus `sub_us_ns`)."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return int(moment.timestamp() * 1_000_000) * 1000 + sub_us_ns


def rfc3339(ns: int) -> str:
    """How the query API shows an event time: microseconds, rounded down, in UTC."""
    moment = datetime.fromtimestamp(ns // 1000 / 1_000_000, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def stream(labels: dict[str, str], *lines: str, minutes_ago: float = 1.0) -> Stream:
    return Stream(labels, [Entry(at(minutes_ago - i / 1000), line) for i, line in enumerate(lines)])


def as_json(*streams: Stream) -> dict[str, Any]:
    return {
        "streams": [
            {
                "stream": s.labels,
                "values": [
                    [str(e.ns), e.line, e.metadata] if e.metadata else [str(e.ns), e.line]
                    for e in s.entries
                ],
            }
            for s in streams
        ]
    }


def label_set(labels: dict[str, str]) -> str:
    """Labels as Prometheus writes them; JSON's string escapes are Go's for these values."""
    pairs = (f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in labels.items())
    return "{" + ", ".join(pairs) + "}"


def push_request(*streams: Stream | tuple[str, list[Entry]]) -> PushRequest:
    adapters = []
    for s in streams:
        labels, entries = (label_set(s.labels), s.entries) if isinstance(s, Stream) else s
        adapters.append(
            StreamAdapter(
                labels=labels,
                entries=[
                    EntryAdapter(
                        timestamp={"seconds": e.ns // 10**9, "nanos": e.ns % 10**9},
                        line=e.line,
                        structuredMetadata=[{"name": k, "value": v} for k, v in e.metadata.items()],
                    )
                    for e in entries
                ],
            )
        )
    return PushRequest(streams=adapters)


def as_protobuf(*streams: Stream | tuple[str, list[Entry]]) -> bytes:
    return bytes(cramjam.snappy.compress_raw(push_request(*streams).SerializeToString()))


async def found(http: httpx.AsyncClient, q: str = "", **headers: str) -> list[dict[str, Any]]:
    """Every stored log the query finds, oldest first."""
    params = {"q": q, "limit": 1000, "order": "asc"}
    answer = await http.get("/api/logs", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


async def push_json(http: httpx.AsyncClient, *streams: Stream, **headers: str) -> httpx.Response:
    return await http.post(PUSH, json=as_json(*streams), headers=headers)


async def push_protobuf(
    http: httpx.AsyncClient, *streams: Stream, **headers: str
) -> httpx.Response:
    return await http.post(PUSH, content=as_protobuf(*streams), headers={**PROTOBUF, **headers})


def assert_stored(answer: httpx.Response) -> None:
    assert answer.status_code == 204, answer.text
    assert answer.content == b""


def messages(logs: list[dict[str, Any]]) -> list[str]:
    return [log["message"] for log in logs]


PUMP = Stream(
    {"host": "pump-7", "job": "pumps", "site": "north", "level": "warn"},
    [
        Entry(at(3, sub_us_ns=789), "pressure high"),
        Entry(at(2), "valve stuck", {"trace_id": "abc123", "severity": "critical"}),
        Entry(at(1), "back to normal", {"detected_level": "info", "site": "line 3"}),
    ],
)
PUMP_STORED = [
    {
        "device_id": "pump-7",
        "log_level": "WARNING",
        "message": "pressure high",
        "log_data": {"job": "pumps", "site": "north", "level": "warn"},
        "created_at": rfc3339(PUMP.entries[0].ns),
    },
    {
        "device_id": "pump-7",
        "log_level": "CRITICAL",
        "message": "valve stuck",
        "log_data": {
            "job": "pumps",
            "site": "north",
            "level": "warn",
            "trace_id": "abc123",
            "severity": "critical",
        },
        "created_at": rfc3339(PUMP.entries[1].ns),
    },
    {
        "device_id": "pump-7",
        "log_level": "INFO",
        "message": "back to normal",
        "log_data": {
            "job": "pumps",
            "site": "north",
            "level": "warn",
            "detected_level": "info",
            "site_extracted": "line 3",
        },
        "created_at": rfc3339(PUMP.entries[2].ns),
    },
]
MAPPED_FIELDS = ("device_id", "log_level", "message", "log_data", "created_at")


def mapped(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: log[name] for name in MAPPED_FIELDS} for log in logs]


class TestMapping:
    @pytest.mark.parametrize("push", [push_json, push_protobuf])
    async def test_entries_are_stored_once_with_the_documented_mapping(self, client, push):
        assert_stored(await push(client, PUMP))
        assert mapped(await found(client)) == PUMP_STORED
        assert messages(await found(client, "device:pump-7 level>=error")) == ["valve stuck"]
        assert messages(await found(client, "attr.trace_id:abc123")) == ["valve stuck"]

    @pytest.mark.parametrize(
        ("labels", "device"),
        [
            ({"job": "j", "hostname": "hn", "host": "h", "device_id": "d"}, "d"),
            ({"job": "j", "hostname": "hn", "host": "h"}, "h"),
            ({"job": "j", "hostname": "hn"}, "hn"),
            ({"job": "j", "app": "a"}, "j"),
            ({"device_id": "", "host": "h"}, "h"),
        ],
    )
    async def test_the_first_device_label_present_names_the_device(self, client, labels, device):
        assert_stored(await push_json(client, stream(labels, "hello")))
        (log,) = await found(client)
        assert log["device_id"] == device
        assert log["log_data"] == {k: v for k, v in labels.items() if v != device}

    async def test_the_device_labels_are_a_setting(self, tmp_path):
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", loki_device_labels="node")
        async with running_app(await migrated(settings)) as app, client_of(app) as http:
            assert_stored(await push_json(http, stream({"node": "n1", "host": "h1"}, "x")))
            (log,) = await found(http)
        assert (log["device_id"], log["log_data"]) == ("n1", {"host": "h1"})

    @pytest.mark.parametrize(
        ("labels", "metadata", "level"),
        [
            ({"lvl": "DEBUG"}, {}, "DEBUG"),
            ({"severity": "Err"}, {}, "ERROR"),
            ({"detected_level": "fatal"}, {}, "CRITICAL"),
            ({"level": "notice"}, {}, "INFO"),
            ({"level": "verbose"}, {}, "INFO"),
            ({"level": "verbose", "lvl": "warning"}, {}, "WARNING"),
            ({"level": "error"}, {"level": "debug"}, "DEBUG"),
            ({"level": "error"}, {"lvl": "trace"}, "DEBUG"),
            ({}, {}, "INFO"),
        ],
    )
    async def test_the_level_comes_from_metadata_then_labels(self, client, labels, metadata, level):
        pushed = Stream({"host": "h", **labels}, [Entry(at(1), "x", metadata)])
        assert_stored(await push_protobuf(client, pushed))
        (log,) = await found(client)
        assert log["log_level"] == level

    async def test_the_org_id_is_kept_and_clashes_get_a_suffix(self, client):
        pushed = Stream(
            {"host": "h", "org_id": "label", "env": "prod"},
            [Entry(at(1), "x", {"env": "canary", "env_extracted": "meta"})],
        )
        assert_stored(await push_json(client, pushed, **{"X-Scope-OrgID": "tenant-1"}))
        (log,) = await found(client)
        assert log["log_data"] == {
            "org_id": "label",
            "env": "prod",
            "env_extracted": "canary",
            "env_extracted_extracted": "meta",
            "org_id_extracted": "tenant-1",
        }

    async def test_lines_keep_newlines_and_long_ones_are_cut_with_a_marker(self, client):
        long_line = "é" * 200_000
        pushed = stream({"host": "h"}, "two\nlines", long_line)
        assert_stored(await push_protobuf(client, pushed))
        short, cut = await found(client)
        assert short["message"] == "two\nlines"
        assert cut["message"].startswith("é" * 1000)
        assert cut["message"].endswith(" …[truncated 137856 bytes]")

    async def test_a_push_without_streams_stores_nothing(self, client):
        assert_stored(await client.post(PUSH, json={"streams": []}))
        assert_stored(await client.post(PUSH, content=as_protobuf(), headers=PROTOBUF))
        assert await found(client) == []


class TestEncodings:
    @pytest.mark.parametrize(
        ("body", "headers"),
        [
            (json.dumps(as_json(PUMP)).encode(), {"Content-Type": "application/json"}),
            (
                json.dumps(as_json(PUMP)).encode(),
                {"Content-Type": "application/json; charset=utf-8"},
            ),
            (json.dumps(as_json(PUMP)).encode(), {}),
            (b" \n" + json.dumps(as_json(PUMP)).encode(), {}),
            (as_protobuf(PUMP), PROTOBUF),
            (as_protobuf(PUMP), {}),
        ],
        ids=[
            "json",
            "json-charset",
            "json-untyped",
            "json-untyped-space",
            "protobuf",
            "protobuf-untyped",
        ],
    )
    async def test_either_encoding_with_or_without_a_content_type(self, client, body, headers):
        assert_stored(await client.post(PUSH, content=body, headers=headers))
        assert mapped(await found(client)) == PUMP_STORED

    @pytest.mark.parametrize("encoding", ["gzip", "deflate"])
    @pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
    async def test_gzip_and_deflate_bodies(self, client, encoding, protobuf):
        raw = as_protobuf(PUMP) if protobuf else json.dumps(as_json(PUMP)).encode()
        body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
        headers = {**(PROTOBUF if protobuf else {}), "Content-Encoding": encoding}
        assert_stored(await client.post(PUSH, content=body, headers=headers))
        assert mapped(await found(client)) == PUMP_STORED

    async def test_a_snappy_block_of_123_bytes_is_protobuf_though_it_opens_like_json(self, client):
        line = "x" * 72
        request = push_request(Stream({"host": "h"}, [Entry(at(1), line)]))
        padding = 123 - request.ByteSize()
        request.streams[0].entries[0].line = line + "y" * padding
        body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
        assert body[:1] == b"{"
        assert_stored(await client.post(PUSH, content=body))
        assert messages(await found(client)) == [line + "y" * padding]

    @pytest.mark.parametrize(
        ("headers", "field"),
        [
            ({"Content-Type": "text/plain"}, "Content-Type"),
            (
                {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
                "Content-Encoding",
            ),
        ],
    )
    async def test_other_types_and_encodings_get_a_415(self, client, headers, field):
        answer = await client.post(PUSH, content=as_protobuf(PUMP), headers=headers)
        assert answer.status_code == 415
        assert answer.json()["detail"][0]["field"] == field
        assert await found(client) == []

    async def test_bodies_over_the_limit_before_or_after_snappy_get_a_413(self, tmp_path):
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", max_body_bytes=64 * 1024)
        lines = ["a" * 1000 for _ in range(100)]
        small_when_snappy = as_protobuf(stream({"host": "h"}, *lines))
        assert len(small_when_snappy) < 64 * 1024
        async with running_app(await migrated(settings)) as app, client_of(app) as http:
            inflated = await http.post(PUSH, content=small_when_snappy, headers=PROTOBUF)
            sent = await http.post(PUSH, json=as_json(stream({"host": "h"}, *lines)))
            assert [inflated.status_code, sent.status_code] == [413, 413]
            assert inflated.json()["detail"] == [
                {"field": "body", "rule": "max_bytes", "limit": 65536}
            ]
            assert await found(http) == []


def protobuf_with_labels(labels: str) -> bytes:
    return as_protobuf(PUMP, (labels, [Entry(at(1), "never stored")]))


GOOD_PROTOBUF = push_request(PUMP).SerializeToString()
GOOD_JSON = as_json(PUMP)


def json_with(entry: Any) -> dict[str, Any]:
    """PUMP, and a second stream of one entry as given."""
    return {"streams": [*GOOD_JSON["streams"], {"stream": {"host": "h"}, "values": [entry]}]}


def bad_bodies() -> list[Any]:
    cases = [
        (
            "truncated-protobuf",
            bytes(cramjam.snappy.compress_raw(GOOD_PROTOBUF[:-5])),
            PROTOBUF,
            "protobuf",
        ),
        ("protobuf-not-snappy", GOOD_PROTOBUF, PROTOBUF, "snappy"),
        ("snappy-framed", bytes(cramjam.snappy.compress(GOOD_PROTOBUF)), PROTOBUF, "snappy"),
        ("random-bytes", bytes(range(7, 250, 3)), PROTOBUF, "snappy"),
        ("random-bytes-untyped", bytes(range(7, 250, 3)), {}, "snappy"),
        ("empty-protobuf-body", b"", PROTOBUF, "snappy"),
        ("labels-unquoted", protobuf_with_labels("{host=cam}"), PROTOBUF, "label_set"),
        ("labels-not-a-set", protobuf_with_labels("host: cam"), PROTOBUF, "label_set"),
        ("labels-bad-escape", protobuf_with_labels(r'{host="c\qam"}'), PROTOBUF, "label_set"),
        ("json-broken", b'{"streams": [', {"Content-Type": "application/json"}, "json_invalid"),
    ]
    wrong_shapes = [
        ("json-streams-not-a-list", {"streams": {}}, "list_type", "streams"),
        ("json-no-streams", {}, "missing", "streams"),
        (
            "json-label-a-number",
            {"streams": [{"stream": {"host": 7}, "values": []}]},
            "string_type",
            "streams[0].stream.host",
        ),
        ("json-entry-not-a-list", json_with("line"), "named_tuple_type", "streams[1].values[0]"),
        (
            "json-entry-too-long",
            json_with([str(at(1)), "x", {}, "extra"]),
            "too_long",
            "streams[1].values[0]",
        ),
        ("json-entry-too-short", json_with([str(at(1))]), "missing", "streams[1].values[0][1]"),
        (
            "json-line-a-number",
            json_with([str(at(1)), 42]),
            "string_type",
            "streams[1].values[0][1]",
        ),
        (
            "json-metadata-a-list",
            json_with([str(at(1)), "x", ["a"]]),
            "dict_type",
            "streams[1].values[0][2]",
        ),
        (
            "json-ts-words",
            json_with(["yesterday", "x"]),
            "loki_timestamp",
            "streams[1].values[0][0]",
        ),
        ("json-ts-a-number", json_with([at(1), "x"]), "loki_timestamp", "streams[1].values[0][0]"),
        ("json-ts-fraction", json_with(["1.5", "x"]), "loki_timestamp", "streams[1].values[0][0]"),
        ("json-ts-negative", json_with(["-1", "x"]), "loki_timestamp", "streams[1].values[0][0]"),
        (
            "json-ts-past-int64",
            json_with([str(2**63), "x"]),
            "loki_timestamp",
            "streams[1].values[0][0]",
        ),
    ]
    return [
        pytest.param(
            body, headers, rule, "body" if rule != "label_set" else "streams[1].labels", id=name
        )
        for name, body, headers, rule in cases
    ] + [
        pytest.param(json.dumps(body).encode(), {}, rule, where, id=name)
        for name, body, rule, where in wrong_shapes
    ]


class TestBadBodies:
    @pytest.mark.parametrize(("body", "headers", "rule", "where"), bad_bodies())
    async def test_a_body_that_is_not_loki_gets_a_400_and_stores_nothing(
        self, client, body, headers, rule, where
    ):
        answer = await client.post(PUSH, content=body, headers=headers)
        assert answer.status_code == 400, answer.text
        error = answer.json()
        assert error["error"] == "malformed_body"
        assert {"field": where, "rule": rule} in [
            {"field": d["field"], "rule": d["rule"]} for d in error["detail"]
        ], error
        assert await found(client) == []

    async def test_the_labels_error_says_where_it_broke(self, client):
        answer = await client.post(
            PUSH, content=protobuf_with_labels('{host="a" job="b"}'), headers=PROTOBUF
        )
        assert answer.json()["message"] == (
            "the labels of stream 1 are not a Prometheus label set: "
            "expected '}', found 'j' at character 11"
        )
        assert answer.json()["detail"][0]["position"] == 11


class TestRefusedEntries:
    async def test_entries_breaking_a_rule_are_refused_and_the_others_stored(self, client):
        before = sample("fleetlog_shipped_records_total", protocol="loki", outcome="refused")
        pushed = [
            Stream(
                {"host": "cam-1"},
                [
                    Entry(at(1), "fresh"),
                    Entry(at(8 * 24 * 60), "eight days old"),
                    Entry(at(-30), "half an hour ahead"),
                    Entry(at(2), "also fresh"),
                ],
            ),
            stream({"app": "no device"}, "nobody's", "nobody's either"),
            stream({"host": "d" * 51}, "device id too long"),
            stream({"host": "cam-2"}, "fine too"),
        ]
        answer = await push_json(client, *pushed)
        assert answer.status_code == 400
        error = answer.json()
        assert error["error"] == "invalid_entries"
        assert error["message"] == "5 entries were refused and 3 stored"
        assert [(d["stream"], d["entry"], d["rule"]) for d in error["detail"]] == [
            (0, 1, "event_time_window"),
            (0, 2, "event_time_window"),
            (1, 0, "device_label"),
            (1, 1, "device_label"),
            (2, 0, "device_id"),
        ]
        assert "is not between" in error["detail"][0]["message"]
        assert error["detail"][2]["message"] == (
            "the stream has none of the device labels device_id, host, hostname, job"
        )
        assert sorted(messages(await found(client))) == ["also fresh", "fine too", "fresh"]
        refused = sample("fleetlog_shipped_records_total", protocol="loki", outcome="refused")
        assert refused - before == 5

    @pytest.mark.parametrize("push", [push_json, push_protobuf])
    async def test_log_data_rules_count_the_labels_with_each_entrys_metadata(self, client, push):
        # log_data: the 2 labels besides the device's, then the metadata.
        labels = {"host": "cam-1", "app": "door", "zone": "north"}
        at_limit = {f"m{i}": "x" for i in range(MAX_LOG_DATA_KEYS - 2)}
        pushed = [
            Stream(
                labels,
                [
                    Entry(at(1), "at the limit", at_limit),
                    Entry(at(1), "over it", {**at_limit, "one more": "x"}),
                    Entry(at(1), "nul in metadata", {"k": "a\x00"}),
                    Entry(at(1), "nul in a metadata name", {"k\x00": "a"}),
                    Entry(at(1), "plain", {"k": "a"}),
                ],
            ),
            stream({"host": "cam-2", "app": "a\x00"}, "nul in a label"),
        ]
        answer = await push(client, *pushed)
        assert answer.status_code == 400
        assert [(d["stream"], d["entry"], d["rule"]) for d in answer.json()["detail"]] == [
            (0, 1, "log_data.max_keys"),
            (0, 2, "log_data.no_nul"),
            (0, 3, "log_data.no_nul"),
            (1, 0, "log_data.no_nul"),
        ]
        assert sorted(messages(await found(client))) == ["at the limit", "plain"]

    async def test_a_nul_escaped_in_the_labels_of_a_body_without_a_zero_byte_is_refused(
        self, client
    ):
        # The label set's text writes it as \u0000: the protobuf body holds no 0x00 byte.
        body = as_protobuf(stream({"host": "cam-2", "app": "a\x00"}, "nul in a label"))
        assert b"\x00" not in cramjam.snappy.decompress_raw(body).read()
        answer = await client.post(PUSH, content=body, headers=PROTOBUF)
        assert answer.status_code == 400
        (refusal,) = answer.json()["detail"]
        assert (refusal["stream"], refusal["entry"], refusal["rule"]) == (0, 0, "log_data.no_nul")
        assert await found(client) == []

    async def test_a_protobuf_time_no_calendar_holds_is_refused(self, client):
        far = Entry(10**9 * 400_000_000_000, "year ten thousand and more")
        answer = await push_protobuf(client, Stream({"host": "h"}, [far, Entry(at(1), "ok")]))
        assert answer.status_code == 400
        (refusal,) = answer.json()["detail"]
        assert (refusal["stream"], refusal["entry"], refusal["rule"]) == (0, 0, "event_time_window")
        assert messages(await found(client)) == ["ok"]

    async def test_only_the_first_hundred_refusals_are_listed(self, client):
        answer = await push_json(client, stream({"app": "x"}, *[f"l{i}" for i in range(150)]))
        error = answer.json()
        assert error["message"] == (
            "150 entries were refused and 0 stored; the first 100 refused are listed"
        )
        assert len(error["detail"]) == 100


class TestCredentials:
    @pytest.fixture
    async def secured(self, tmp_path):
        settings = secure_settings(tmp_path / "data")
        keys = {
            "ingest": await add_key(settings, "ingest", Scope.INGEST),
            "read": await add_key(settings, "read", Scope.READ),
            "cams": await add_key(settings, "cams", Scope.INGEST, device_prefix="cam-"),
            "slow": await add_key(settings, "slow", Scope.INGEST, rate=0.01, burst=1),
        }
        async with serving(settings) as http:
            yield http, keys

    async def test_basic_auth_with_the_key_as_password(self, secured):
        http, keys = secured
        pushed = as_protobuf(stream({"host": "cam-1"}, "hello"))
        basic = httpx.BasicAuth("promtail", keys["ingest"])
        assert (await http.post(PUSH, content=pushed, headers=PROTOBUF)).status_code == 401
        wrong = httpx.BasicAuth("promtail", "not-a-key")
        assert (
            await http.post(PUSH, content=pushed, headers=PROTOBUF, auth=wrong)
        ).status_code == 401
        assert_stored(await http.post(PUSH, content=pushed, headers=PROTOBUF, auth=basic))
        assert_stored(
            await push_json(http, stream({"host": "cam-2"}, "bearer"), **bearer(keys["ingest"]))
        )
        logs = await found(http, **bearer(keys["read"]))
        assert [(log["device_id"], log["message"]) for log in logs] == [
            ("cam-1", "hello"),
            ("cam-2", "bearer"),
        ]

    async def test_a_key_bound_to_a_prefix_writes_only_its_devices(self, secured):
        http, keys = secured
        credential = bearer(keys["cams"])
        answer = await push_json(
            http,
            stream({"host": "cam-1"}, "mine"),
            stream({"host": "pump-1"}, "not mine"),
            **credential,
        )
        assert answer.status_code == 403
        assert [(d["stream"], d["rule"]) for d in answer.json()["detail"]] == [(1, "device_prefix")]
        mixed = await push_json(
            http,
            stream({"host": "pump-2"}, "not mine"),
            stream({"app": "x"}, "nobody's"),
            **credential,
        )
        assert mixed.status_code == 400
        assert messages(await found(http, **bearer(keys["read"]))) == ["mine"]

    async def test_over_the_rate_limit_a_push_gets_429_with_retry_after(self, secured):
        http, keys = secured
        credential = bearer(keys["slow"])
        assert_stored(await push_json(http, stream({"host": "h"}, "first"), **credential))
        answer = await push_json(http, stream({"host": "h"}, "second"), **credential)
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) >= 1
        assert messages(await found(http, **bearer(keys["read"]))) == ["first"]


class TestPythonLoggingLoki:
    """python-logging-loki's handler, as an application runs it, against a real server."""

    async def test_its_records_are_stored_with_their_tags_and_level(self, tmp_path):
        with running_server(tmp_path / "data") as server:
            started = time.time()
            await asyncio.to_thread(log_through_loki_handler, f"{server.url}{PUSH}")
            async with httpx.AsyncClient(base_url=server.url) as http:
                logs = await found(http)
        assert [(log["device_id"], log["log_level"], log["message"]) for log in logs] == [
            ("kiosk-3", "INFO", "door opened"),
            ("kiosk-3", "WARNING", "paper low: 3 sheets"),
            ("kiosk-3", "ERROR", "printer jammed"),
        ]
        assert logs[2]["log_data"] == {
            "app": "kiosk",
            "severity": "error",
            "logger": "kiosk.printer",
            "tray": "2",
        }
        assert all(
            datetime.fromisoformat(log["created_at"]).timestamp() >= started - 1 for log in logs
        )


class Strict(LokiHandler):
    """A LokiHandler that raises what went wrong instead of printing it."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise


def log_through_loki_handler(url: str) -> None:
    handler = Strict(url=url, tags={"host": "kiosk-3", "app": "kiosk"}, version="1")
    logger = logging.getLogger("kiosk.printer")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("door opened")
        logger.warning("paper low: %d sheets", 3)
        logger.error("printer jammed", extra={"tags": {"tray": "2"}})
    finally:
        logger.removeHandler(handler)
        handler.close()


async def test_pipeline_mode_stores_each_entry_once_in_postgresql(pipeline, table):
    async with running_app(pipeline) as app, client_of(app) as http, running_worker(pipeline):
        assert_stored(await push_protobuf(http, PUMP))
        assert_stored(await push_json(http, stream({"host": "cam-9"}, "json one", "json two")))
        await wait_for(stored_and_acknowledged(app), what="the pushed entries stored")
        assert mapped(await found(http, "device:pump-7")) == PUMP_STORED
        assert messages(await found(http, "device:cam-9")) == ["json one", "json two"]
    keys = await table.keys()
    assert len(keys) == len(set(keys)) == 5


async def test_pipeline_mode_past_the_backlog_a_push_gets_503(redis_url, pg_url, tmp_path):
    # 20 logs of backlog over 4 shards, which take requests in turn: 5 per shard.
    settings = pipeline_settings(redis_url, pg_url, tmp_path, max_backlog=20)
    async with running_app(settings) as app, client_of(app) as http:
        for _ in range(4):
            assert_stored(await push_json(http, stream({"host": "cam-1"}, *"abcd")))
        answer = await push_json(http, stream({"host": "cam-1"}, "one", "too many"))
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["error"] == "backlog_full"
