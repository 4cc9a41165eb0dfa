"""Log records: the one wire format between the API and the worker, and the rules of a log."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic_core import PydanticCustomError

from fleetlog.records import (
    UndecodableRecords,
    check_log_data,
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


def nest(depth: int, innermost: object) -> object:
    """`depth` containers, alternating dict and list, around `innermost`."""
    value = innermost
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


class TestLogDataRules:
    def test_sixteen_levels_are_accepted_seventeen_refused(self) -> None:
        # The outer object is level 1; `nest(14, x)` puts x at level 16.
        assert check_log_data({"a": nest(14, 1)})
        assert check_log_data({"a": nest(14, {})})
        for too_deep in ({"a": nest(15, 1)}, {"a": nest(15, {})}, {"a": nest(14, [0])}):
            with pytest.raises(PydanticCustomError, match="deeper than 16"):
                check_log_data(too_deep)

    @pytest.mark.parametrize(
        ("log_data", "rule"),
        [
            ({"a": [{"b": [1, "x\x00"]}]}, "no_nul"),
            ({"a": [{"b\x00": 1}]}, "no_nul"),
            ({"a": [[2**63]]}, "int64_range"),
            ({"a": [[-(2**63) - 1]]}, "int64_range"),
            ({"a": {"b": float("inf")}}, "finite_number"),
            ({f"k{i}": {"x": i} for i in range(501)}, "max_keys"),
        ],
    )
    def test_rules_hold_at_any_depth(self, log_data: dict[str, Any], rule: str) -> None:
        with pytest.raises(PydanticCustomError) as refused:
            check_log_data(log_data)
        assert refused.value.type == rule

    def test_subclasses_of_json_types_follow_the_same_rules(self) -> None:
        class Big(int):
            pass

        class Text(str):
            pass

        assert check_log_data({"a": Big(5), "b": Text("ok"), "c": True, "d": None})
        for bad in ({"a": Big(2**64)}, {"a": [Text("x\x00")]}):
            with pytest.raises(PydanticCustomError):
                check_log_data(bad)
