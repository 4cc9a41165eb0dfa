"""Log records: the one wire format between the API and the worker, and the rules of a log."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from fleetlog.records import (
    EventWindow,
    LogIn,
    UndecodableRecords,
    check_log_data,
    check_wire_header,
    decode_records,
    encode_records,
)
from tests.fixtures.pipeline import make_record
from tests.fixtures.records import make_log


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


def sent_timestamp(value: object) -> datetime | float | None:
    return LogIn.model_validate_json(orjson.dumps(make_log(timestamp=value))).timestamp


class TestTimestampParsing:
    @pytest.mark.parametrize(
        ("sent", "kept"),
        [
            (1764064800, 1764064800.0),
            (1764064800.25, 1764064800.25),
            (1764064800123, 1764064800123.0),
            ("1764064800", 1764064800.0),
            ("-1.5", -1.5),
            ("2026-11-25T12:30:00+02:00", datetime(2026, 11, 25, 10, 30, tzinfo=UTC)),
            ("2026-11-25T10:30:00", datetime(2026, 11, 25, 10, 30, tzinfo=UTC)),
            (None, None),
        ],
    )
    def test_times_become_utc_and_epoch_numbers_stay_numbers(self, sent, kept):
        value = sent_timestamp(sent)
        assert value == kept
        assert type(value) is type(kept)
        if isinstance(value, datetime):
            assert value.tzinfo is UTC

    @pytest.mark.parametrize(
        "sent", [b"true", b'"yesterday"', b'"NaN"', b'"inf"', b'"1e9"', b"[1]", b"{}", b"1e400"]
    )
    def test_anything_else_is_one_error_naming_the_formats(self, sent):
        body = b'{"device_id": "d", "log_level": "INFO", "message": "m", "timestamp": %s}'
        with pytest.raises(ValidationError) as refused:
            LogIn.model_validate_json(body % sent)
        (error,) = refused.value.errors()
        assert (error["loc"], error["type"]) == (("timestamp",), "event_time_format")
        assert "RFC 3339" in error["msg"]


NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
WEEK = EventWindow(max_age=timedelta(days=7), max_skew=timedelta(minutes=10))


class TestEventWindow:
    @pytest.mark.parametrize(
        ("timestamp", "placed"),
        [
            (NOW - timedelta(days=7), NOW - timedelta(days=7)),
            (NOW + timedelta(minutes=10), NOW + timedelta(minutes=10)),
            (NOW - timedelta(days=7, microseconds=1), None),
            (NOW + timedelta(minutes=10, microseconds=1), None),
            (datetime(1970, 1, 1, tzinfo=UTC), None),
        ],
    )
    def test_times_inside_are_kept_the_others_refused(self, timestamp, placed):
        assert WEEK.at(NOW).place(timestamp) == placed

    @pytest.mark.parametrize(
        ("timestamp", "placed"),
        [
            (NOW.timestamp(), NOW),
            (NOW.timestamp() - 0.5, NOW - timedelta(milliseconds=500)),
            (NOW.timestamp() * 1000 + 250, NOW + timedelta(milliseconds=250)),
            (253402300799.0, None),  # year 9999 in seconds; 1978 in milliseconds
            (0.0, None),
            (-1.0, None),
            (1e300, None),
        ],
    )
    def test_an_epoch_number_is_seconds_else_milliseconds_else_refused(self, timestamp, placed):
        assert WEEK.at(NOW).place(timestamp) == placed

    def test_seconds_win_when_both_readings_fit(self):
        sixty_years = EventWindow(max_age=timedelta(days=60 * 366), max_skew=timedelta(0))
        when = NOW - timedelta(days=1)
        assert sixty_years.at(NOW).place(when.timestamp()) == when

    def test_a_window_past_the_calendar_stops_at_its_ends(self):
        bounds = EventWindow(max_age=timedelta.max, max_skew=timedelta.max).at(NOW)
        first, last = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        assert bounds.place(first) == first
        assert bounds.place(last) == last
        assert bounds.place(first.timestamp()) == first
        assert bounds.place(last.timestamp()) == last
        # Past the last second of 9999 as seconds, so read as milliseconds: in 1978.
        assert bounds.place(last.timestamp() + 1) == datetime(
            1978, 1, 11, 21, 31, 40, 800_000, tzinfo=UTC
        )

    def test_times_with_an_offset_compare_as_instants(self):
        ahead = (NOW + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-8)))
        assert WEEK.at(NOW).place(ahead) == ahead
