"""GELF over HTTP (`POST /gelf`) and UDP: plain, gzip, zlib, chunked; on both stores."""

import gzip
import json
import os
import zlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fleetlog.auth.principals import Scope
from fleetlog.localstack import free_port
from tests.api.test_pipeline_query import stored_and_acknowledged
from tests.fixtures.app import client_of, running_app
from tests.fixtures.auth import add_key, bearer, secure_settings, serving
from tests.fixtures.pipeline import Table, running_worker, wait_for
from tests.listeners.conftest import Counted, Fleetlog, send_udp

SENT_AT = datetime.now(UTC).replace(microsecond=250000) - timedelta(minutes=5)


def gelf(short_message: str, **fields) -> bytes:
    message = {
        "version": "1.1",
        "host": "cam-7",
        "short_message": short_message,
        "timestamp": SENT_AT.timestamp(),
        "level": 4,
        "_zone": "north",
    }
    return json.dumps(message | fields).encode()


def chunked(payload: bytes, size: int) -> list[bytes]:
    """GELF chunks of `size` bytes of payload, as Graylog's clients cut them."""
    pieces = [payload[at : at + size] for at in range(0, len(payload), size)]
    header = b"\x1e\x0f" + os.urandom(8)
    return [header + bytes([n, len(pieces)]) + piece for n, piece in enumerate(pieces)]


def assert_mapped(log: dict, message: str) -> None:
    assert (log["device_id"], log["log_level"], log["message"]) == ("cam-7", "WARNING", message)
    assert log["log_data"]["zone"] == "north"
    assert datetime.fromisoformat(log["created_at"]) == SENT_AT


class TestHttp:
    @pytest.mark.parametrize(
        ("encode", "headers"),
        [
            (lambda body: body, {"Content-Type": "application/json"}),
            (gzip.compress, {"Content-Encoding": "gzip"}),
            (gzip.compress, {}),
            (zlib.compress, {}),
            (zlib.compress, {"Content-Encoding": "deflate"}),
        ],
        ids=["plain", "gzip-declared", "gzip-detected", "zlib-detected", "deflate-declared"],
    )
    async def test_a_message_is_stored_once_and_answered_202(self, fleetlog, encode, headers):
        body = gelf("door opened", full_message="door opened\nby badge 7", line=12)
        answer = await fleetlog.http.post("/gelf", content=encode(body), headers=headers)
        assert (answer.status_code, answer.content) == (202, b"")
        (log,) = await fleetlog.search()
        assert_mapped(log, "door opened")
        assert log["log_data"] == {
            "zone": "north",
            "full_message": "door opened\nby badge 7",
            "line": 12,
        }

    @pytest.mark.parametrize(
        ("body", "field", "rule"),
        [
            (b"{not json", "body", "json_invalid"),
            (gelf("x", host=None), "host", "required"),
            (gelf("x", level="loud"), "level", "severity"),
            (gelf("x", timestamp=0), "timestamp", "event_time_window"),
            (gelf("x", host="h" * 51), "host", "device_id"),
            (gzip.compress(gelf("x"))[:-4], "body", "compression"),
        ],
        ids=["json", "host", "level", "too-old", "device-too-long", "truncated-gzip"],
    )
    async def test_a_bad_message_is_a_400_naming_its_field(self, fleetlog, body, field, rule):
        answer = await fleetlog.http.post("/gelf", content=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_gelf"
        assert (answer.json()["detail"][0]["field"], answer.json()["detail"][0]["rule"]) == (
            field,
            rule,
        )
        assert await fleetlog.search() == []

    async def test_a_bomb_is_refused_before_it_inflates(self, fleetlog):
        limit = fleetlog.settings.max_body_bytes
        answer = await fleetlog.http.post("/gelf", content=gzip.compress(b" " * (limit + 1)))
        assert answer.status_code == 413


class TestUdp:
    async def test_plain_gzip_zlib_and_chunked_datagrams(self, fleetlog: Fleetlog):
        counted = Counted()
        big = gelf("chunked " + "z" * 20_000, _padding=os.urandom(6000).hex())
        send_udp(
            fleetlog.gelf_port,
            gelf("plain"),
            gzip.compress(gelf("gzip")),
            zlib.compress(gelf("zlib")),
            *reversed(chunked(gzip.compress(big), 1000)),
            *chunked(big, 8000),
        )
        await counted.reach("gelf_udp", "accepted", 5)
        logs = await fleetlog.search()
        assert sorted(log["message"].split()[0] for log in logs) == [
            "chunked",
            "chunked",
            "gzip",
            "plain",
            "zlib",
        ]
        for log in logs:
            assert_mapped(log, log["message"])
        assert counted.moves() == {"gelf_udp.accepted": 5}

    async def test_bad_datagrams_are_counted_and_the_listener_goes_on(self, fleetlog: Fleetlog):
        counted = Counted()
        bad_chunk = b"\x1e\x0f" + b"\x01" * 8 + bytes([3, 2]) + b"x"
        send_udp(
            fleetlog.gelf_port,
            b"not json",
            gzip.compress(b"[]"),
            bad_chunk,
            gelf("too old", timestamp=0),
            gelf("good"),
        )
        await counted.reach("gelf_udp", "accepted", 1)
        await counted.reach("gelf_udp", "invalid", 3)
        await counted.reach("gelf_udp", "refused", 1)
        assert [log["message"] for log in await fleetlog.search()] == ["good"]


async def test_the_udp_listener_writes_to_the_pipeline_streams(pipeline, pg_url):
    configured = pipeline.model_copy(update={"gelf_port": free_port()})
    counted = Counted()
    async with running_app(configured) as app, client_of(app) as http:
        fleetlog = Fleetlog(app, http, configured)
        async with running_worker(configured):
            send_udp(fleetlog.gelf_port, *(gzip.compress(gelf(f"m{n}")) for n in range(20)))
            await counted.reach("gelf_udp", "accepted", 20)
            await wait_for(stored_and_acknowledged(app), what="the messages stored")
        logs = await fleetlog.search()
        assert sorted(log["message"] for log in logs) == sorted(f"m{n}" for n in range(20))
        for log in logs:
            assert_mapped(log, log["message"])
        keys = await Table(pg_url).keys()
        assert len(keys) == len(set(keys)) == 20


class TestCredentials:
    async def test_a_key_bound_to_a_device_prefix_writes_only_its_devices(self, tmp_path):
        settings = secure_settings(tmp_path / "data")
        key = await add_key(settings, "cams", Scope.INGEST, device_prefix="cam-")
        async with serving(settings) as http:
            assert (await http.post("/gelf", content=gelf("no key"))).status_code == 401
            answer = await http.post(
                "/gelf", content=gelf("kiosk", host="kiosk-1"), headers=bearer(key)
            )
            assert answer.status_code == 403
            assert answer.json()["detail"][0] == {
                "field": "host",
                "rule": "device_prefix",
                "message": answer.json()["message"],
            }
            basic = httpx.BasicAuth("shipper", key)
            answer = await http.post("/gelf", content=gelf("camera"), auth=basic)
            assert answer.status_code == 202
