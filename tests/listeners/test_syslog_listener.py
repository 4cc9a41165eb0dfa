"""The syslog listener with util-linux `logger` and by hand: both framings, UDP, bad lines,
long lines, sources not allowed, and backpressure on the pipeline."""

import asyncio
import socket
from datetime import UTC, datetime, timedelta

import pytest

from fleetlog.localstack import free_port
from fleetlog.shippers.intake import TRUNCATED
from tests.api.test_pipeline_query import stored_and_acknowledged
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import Table, running_worker, sample, wait_for
from tests.listeners.conftest import Counted, Fleetlog, listening, run, send_tcp, send_udp

LOGGER_FORMATS = {
    "--rfc5424": socket.gethostname(),
    "--rfc3164": socket.gethostname().split(".")[0],
}


async def logger(port: int, *options: str, stdin: bytes) -> None:
    """util-linux logger, sending each line of `stdin` as one message."""
    await run("logger", "-n", "127.0.0.1", "-P", str(port), *options, stdin=stdin)


def assert_sent_between(log: dict, before: datetime, after: datetime) -> None:
    """The event time is the sender's (RFC 3164's has whole seconds only)."""
    created_at = datetime.fromisoformat(log["created_at"])
    assert before.replace(microsecond=0) <= created_at <= after


class TestLogger:
    @pytest.mark.parametrize("syntax", LOGGER_FORMATS)
    @pytest.mark.parametrize(
        ("transport", "listener"),
        [(["-T", "--octet-count"], "syslog_tcp"), (["-T"], "syslog_tcp"), (["-d"], "syslog_udp")],
        ids=["tcp-octet-counted", "tcp-lf", "udp"],
    )
    async def test_every_line_is_stored_once_with_its_fields(
        self, fleetlog: Fleetlog, syntax, transport, listener
    ):
        counted = Counted()
        before = datetime.now(UTC)
        lines = b"".join(b"valve %d stuck\n" % n for n in range(5))
        options = [*transport, syntax, "-t", "pump", "-i", "-p", "local3.err"]
        await logger(fleetlog.syslog_port, *options, stdin=lines)
        await counted.reach(listener, "accepted", 5)
        after = datetime.now(UTC)

        logs = await fleetlog.search("valve")
        assert [log["message"] for log in logs] == [f"valve {n} stuck" for n in range(5)]
        for log in logs:
            assert log["device_id"] == LOGGER_FORMATS[syntax]
            assert log["log_level"] == "ERROR"
            assert {key: log["log_data"][key] for key in ("facility", "severity", "app_name")} == {
                "facility": "local3",
                "severity": "err",
                "app_name": "pump",
            }
            assert log["log_data"]["procid"].isdigit()
            assert_sent_between(log, before, after)
        assert counted.moves() == {f"{listener}.accepted": 5}

    async def test_structured_data_and_msgid_go_to_log_data(self, fleetlog: Fleetlog):
        counted = Counted()
        sd = ["--sd-id", "site@32473", "--sd-param", 'zone="north"', "--sd-param", 'rack="7"']
        options = ["-T", "--octet-count", "--rfc5424=nohost", "--msgid", "DOOR", *sd]
        await logger(fleetlog.syslog_port, *options, "-p", "auth.warning", stdin=b"door forced\n")
        await counted.reach("syslog_tcp", "accepted", 1)

        (log,) = await fleetlog.search("door")
        assert log["device_id"] == "127.0.0.1"
        assert log["log_level"] == "WARNING"
        assert log["log_data"]["msgid"] == "DOOR"
        assert log["log_data"]["structured_data"]["site@32473"] == {"zone": "north", "rack": "7"}
        assert "tzKnown" in log["log_data"]["structured_data"]["timeQuality"]


class TestBadLines:
    async def test_bad_lines_are_counted_and_the_connection_goes_on(self, fleetlog: Fleetlog):
        counted = Counted()
        minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        lines = [
            b"garbage without a pri",
            b'<14>1 - cam-1 app - - [broken sd="1" after',
            b'<14>1 %s cam-1 app 12 MSG1 [x@1 a="b"] \xef\xbb\xbfgood line' % minute_ago.encode(),
            b"<14>1 - cam-1 app - - -",
            b"<14>1 - " + b"d" * 51 + b" app - - - too long a device",
        ]
        await send_tcp(fleetlog.syslog_port, b"\n".join(lines) + b"\n")
        assert counted.moves() == {
            "syslog_tcp.invalid": 2,
            "syslog_tcp.accepted": 2,
            "syslog_tcp.refused": 1,
        }
        good, empty = await fleetlog.search("device:cam-1")
        assert (good["message"], empty["message"]) == ("good line", "")
        assert good["created_at"] == minute_ago.replace("+00:00", "Z")
        assert good["log_data"] == {
            "facility": "user",
            "severity": "info",
            "app_name": "app",
            "procid": "12",
            "msgid": "MSG1",
            "structured_data": {"x@1": {"a": "b"}},
        }

    async def test_a_frame_over_the_bound_closes_only_its_connection(self, fleetlog: Fleetlog):
        counted = Counted()
        too_long = fleetlog.settings.max_line_bytes + 64 * 1024 + 1
        await send_tcp(fleetlog.syslog_port, b"9 <14>first%d <14>" % too_long + b"x" * 1000)
        await send_tcp(fleetlog.syslog_port, b"10 <14>second")
        assert counted.moves() == {"syslog_tcp.invalid": 1, "syslog_tcp.accepted": 2}
        assert [log["message"] for log in await fleetlog.search()] == ["first", "second"]

    async def test_bad_datagrams_are_counted_and_the_listener_goes_on(self, fleetlog: Fleetlog):
        counted = Counted()
        send_udp(fleetlog.syslog_port, b"", b"\x00\xff garbage", b"<14>1 - h a - - [x", b"<14>ok")
        await counted.reach("syslog_udp", "accepted", 1)
        await counted.reach("syslog_udp", "invalid", 3)
        assert [log["message"] for log in await fleetlog.search()] == ["ok"]


class TestLongLines:
    @pytest.fixture
    async def fleetlog(self, settings):
        configured = listening(settings, max_line_bytes=1024)
        async with running_app(configured) as app, client_of(app) as http:
            yield Fleetlog(app, http, configured)

    @pytest.mark.parametrize("length", [5000, 200_000], ids=["within-frame", "past-frame"])
    async def test_a_long_line_is_cut_marked_and_counted(self, fleetlog: Fleetlog, length):
        counted = Counted()
        truncated = sample("fleetlog_lines_truncated_total", protocol="syslog")
        await send_tcp(fleetlog.syslog_port, b"<14>1 - h a - - - " + b"y" * length + b"\n")
        assert counted.moves() == {"syslog_tcp.accepted": 1}
        assert sample("fleetlog_lines_truncated_total", protocol="syslog") == truncated + 1
        (log,) = await fleetlog.search()
        kept = log["message"].split(" …")[0]
        assert set(kept) == {"y"}
        assert log["message"] == kept + TRUNCATED.format(dropped=length - len(kept))
        assert len(kept) >= 1024 - 64


class TestSources:
    async def test_a_source_outside_the_allowed_networks_is_ignored(self, settings):
        configured = listening(settings, listener_allow=["10.0.0.0/8", "::1/128"])
        async with running_app(configured) as app, client_of(app) as http:
            fleetlog = Fleetlog(app, http, configured)
            counted = Counted()
            await send_tcp(fleetlog.syslog_port, b"<14>tcp line\n")
            send_udp(fleetlog.syslog_port, b"<14>udp line")
            await counted.reach("syslog_udp", "unlisted_source", 1)
            assert counted.moves() == {
                "syslog_tcp.unlisted_source": 1,
                "syslog_udp.unlisted_source": 1,
            }
            assert await fleetlog.search() == []


class TestBackpressure:
    async def test_tcp_waits_for_room_and_udp_counts_its_drops(self, pipeline, pg_url):
        configured = pipeline.model_copy(
            update={
                "syslog_port": free_port(),
                "max_backlog": 4,
                "stream_shards": 1,
                "retry_after": timedelta(milliseconds=50),
            }
        )
        counted = Counted()
        pauses = sample("fleetlog_listener_pauses_total", listener="syslog_tcp")
        async with running_app(configured) as app, client_of(app) as http:
            fleetlog = Fleetlog(app, http, configured)
            _, writer = await asyncio.open_connection("127.0.0.1", fleetlog.syslog_port)
            writer.write(b"".join(b"<14>1 - cam-2 app - - - tcp %d\n" % n for n in range(12)))
            await writer.drain()

            async def paused() -> bool:
                return sample("fleetlog_listener_pauses_total", listener="syslog_tcp") > pauses

            await wait_for(paused, what="the TCP listener to stop reading")
            assert counted("syslog_tcp", "accepted") <= 4
            send_udp(fleetlog.syslog_port, *(b"<14>udp %d" % n for n in range(3)))
            await counted.reach("syslog_udp", "dropped", 3)

            async with running_worker(configured):
                await counted.reach("syslog_tcp", "accepted", 12)
                writer.close()
                await wait_for(stored_and_acknowledged(app), what="the backlog stored")
            messages = [log["message"] for log in await fleetlog.search()]
            assert messages == [f"tcp {n}" for n in range(12)]
            assert counted.moves() == {"syslog_tcp.accepted": 12, "syslog_udp.dropped": 3}
            keys = await Table(pg_url).keys()
            assert len(keys) == len(set(keys)) == 12
