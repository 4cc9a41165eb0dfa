"""GELF messages onto fleetlog's record: compression told by the payload, chunks put together."""

import gzip
import json
import zlib
from datetime import UTC, datetime

import pytest

from fleetlog.errors import PayloadTooLarge
from fleetlog.listeners.chunks import Reassembly
from fleetlog.listeners.errors import InvalidLine
from fleetlog.listeners.gelf import InvalidGelf, inflate, parse_gelf


def gelf(**fields) -> bytes:
    message = {"version": "1.1", "host": "cam-7", "short_message": "motion"} | fields
    return json.dumps({key: value for key, value in message.items() if value is not ...}).encode()


def chunks(payload: bytes, *, message_id: bytes = b"\x01" * 8, size: int = 4) -> list[bytes]:
    pieces = [payload[at : at + size] for at in range(0, len(payload), size)]
    header = b"\x1e\x0f" + message_id
    return [header + bytes([n, len(pieces)]) + piece for n, piece in enumerate(pieces)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestMapping:
    def test_every_field_finds_its_place(self):
        record = parse_gelf(
            gelf(
                full_message="motion\nzone 3",
                level=3,
                timestamp=1796040000.25,
                facility="camera",
                file="motion.c",
                line=42,
                _zone=3,
                _site="north",
            )
        )
        assert (record.device_id, record.message, record.level) == ("cam-7", "motion", "ERROR")
        assert record.ts == datetime.fromtimestamp(1796040000.25, UTC)
        assert record.log_data == {
            "full_message": "motion\nzone 3",
            "facility": "camera",
            "file": "motion.c",
            "line": 42,
            "zone": 3,
            "site": "north",
        }

    @pytest.mark.parametrize(
        ("level", "kept"),
        [(0, "CRITICAL"), (2, "CRITICAL"), (3, "ERROR"), (4, "WARNING"), (5, "INFO")]
        + [(6, "INFO"), (7, "DEBUG"), ("4", "WARNING"), ("debug", "DEBUG"), (..., "INFO")],
    )
    def test_level_is_a_syslog_severity(self, level, kept):
        assert parse_gelf(gelf(level=level)).level == kept

    def test_without_a_timestamp_the_receive_time_is_taken(self):
        assert parse_gelf(gelf()).ts is None

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            (b"{not json", "body"),
            (b"[1]", "body"),
            (gelf(host=...), "host"),
            (gelf(host=""), "host"),
            (gelf(short_message=...), "short_message"),
            (gelf(short_message=5), "short_message"),
            (gelf(level=8), "level"),
            (gelf(level=True), "level"),
            (gelf(level="loud"), "level"),
            (gelf(timestamp="yesterday"), "timestamp"),
            (gelf(timestamp=1e300), "timestamp"),
        ],
    )
    def test_a_broken_message_names_its_field(self, payload, field):
        with pytest.raises(InvalidGelf) as raised:
            parse_gelf(payload)
        assert raised.value.status == 400
        assert raised.value.detail[0]["field"] == field


class TestCompression:
    @pytest.mark.parametrize("compress", [gzip.compress, zlib.compress, lambda data: data])
    def test_gzip_zlib_and_plain_are_told_by_their_first_bytes(self, compress):
        assert inflate(compress(gelf()), limit=1024) == gelf()

    def test_a_payload_is_never_inflated_past_the_limit(self):
        with pytest.raises(PayloadTooLarge):
            inflate(gzip.compress(b" " * 10_000), limit=1024)

    @pytest.mark.parametrize("payload", [gzip.compress(gelf())[:-9], b"\x1f\x8bnot gzip at all"])
    def test_a_broken_or_truncated_payload_is_invalid(self, payload):
        with pytest.raises(InvalidGelf):
            inflate(payload, limit=1024)


class TestChunks:
    def test_chunks_in_any_order_make_the_message(self):
        reassembly = Reassembly()
        first, second, third = chunks(b"0123456789")
        assert reassembly.add(third) == (None, 0)
        assert reassembly.add(first) == (None, 0)
        assert reassembly.add(first) == (None, 0)
        assert reassembly.add(second) == (b"0123456789", 0)
        assert reassembly.partials == {}
        assert reassembly.size == 0

    def test_a_message_not_complete_in_time_is_given_up(self):
        clock = Clock()
        reassembly = Reassembly(timeout=5.0, clock=clock)
        reassembly.add(chunks(b"0123456789")[0])
        clock.now += 4.9
        assert reassembly.expire() == 0
        clock.now += 0.2
        assert reassembly.add(chunks(b"abcdefgh", message_id=b"\x02" * 8)[0]) == (None, 1)
        assert list(reassembly.partials) == [b"\x02" * 8]

    def test_the_oldest_messages_make_room(self):
        reassembly = Reassembly(max_messages=2, max_bytes=10)
        assert reassembly.add(chunks(b"aaaaaaaa", message_id=b"a" * 8)[0]) == (None, 0)
        assert reassembly.add(chunks(b"bbbbbbbb", message_id=b"b" * 8)[0]) == (None, 0)
        assert reassembly.add(chunks(b"cccccccc", message_id=b"c" * 8)[0]) == (None, 1)
        # 8 bytes more pass max_bytes: both older messages go.
        big = chunks(b"dddddddddddddddd", message_id=b"d" * 8, size=8)[0]
        assert reassembly.add(big) == (None, 2)
        assert list(reassembly.partials) == [b"d" * 8]
        assert reassembly.size == 8

    @pytest.mark.parametrize(
        "chunk",
        [
            b"\x1e\x0f" + b"\x01" * 8 + bytes([0, 129]),
            b"\x1e\x0f" + b"\x01" * 8 + bytes([2, 2]),
            b"\x1e\x0f",
        ],
    )
    def test_a_chunk_out_of_bounds_is_invalid(self, chunk):
        with pytest.raises(InvalidLine):
            Reassembly().add(chunk + b"x")

    def test_chunks_that_disagree_on_their_count_give_their_message_up(self):
        reassembly = Reassembly()
        first = chunks(b"0123456789")[0]
        reassembly.add(first)
        with pytest.raises(InvalidLine):
            reassembly.add(first[:11] + b"\x05" + first[12:])
        assert reassembly.partials == {}
