"""The one wire format between the API and the worker."""

from datetime import UTC, datetime

import orjson
import pytest

from fleetlog.records import (
    UndecodableRecords,
    check_wire_header,
    decode_records,
    encode_records,
)
from tests.fixtures.pipeline import make_record


class TestWireFormat:
    def test_round_trip_keeps_every_field_to_the_microsecond(self) -> None:
        records = [
            make_record(
                device_id="cam-7",
                level="ERROR",
                message="lens fogged ☁",
                log_data={"nested": {"list": [1, 2.5, None, "x"]}},
                ts=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            ),
            make_record(),
        ]
        assert decode_records(encode_records(records)) == records

    def test_is_compact_arrays_with_epoch_microseconds(self) -> None:
        when = datetime(2026, 11, 25, tzinfo=UTC)
        record = make_record(ts=when, received_at=when, log_data={})
        assert orjson.loads(encode_records([record])) == [
            1,
            [
                ["device_001", "INFO", "sensor reading out of range", {}, 1795564800000000] * 1
                + [1795564800000000]
            ],
        ]

    @pytest.mark.parametrize(
        "payload",
        [
            b"",
            b"not json",
            b"[2, []]",
            b"[1, []]",
            b'[1, [["d", "INFO", "m", {}, 1]]]',
            b'[1, [["d", "LOUD", "m", {}, 1, 1]]]',
            b'[1, [["d", "INFO", "m", [], 1, 1]]]',
            b'[1, [["d", "INFO", "m", {}, 1.5, 1]]]',
            b'[1, [["d", "INFO", "m", {}, 9223372036854775807, 1]]]',
        ],
    )
    def test_anything_else_is_undecodable(self, payload: bytes) -> None:
        with pytest.raises(UndecodableRecords):
            decode_records(payload)

    def test_every_batch_passes_the_header_check(self) -> None:
        check_wire_header(encode_records([make_record(), make_record(message="[1,[[")]))

    @pytest.mark.parametrize("payload", [b"", b"not json", b"[2,[[", b"[1, [[", b"[1,[]]"])
    def test_the_header_check_refuses_what_no_encoder_wrote(self, payload: bytes) -> None:
        with pytest.raises(UndecodableRecords, match="does not begin with"):
            check_wire_header(payload)
