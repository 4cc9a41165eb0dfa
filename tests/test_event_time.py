"""Event times: how a log's timestamp is read, and the window of times fleetlog accepts."""

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from fleetlog.event_time import EventWindow
from fleetlog.records import LogIn
from tests.fixtures.records import make_log


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
