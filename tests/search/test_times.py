"""since and until as people and programs write them."""

from datetime import UTC, datetime, timedelta

import pytest

from fleetlog.errors import InvalidParameter
from fleetlog.search.times import closed_days, parse_time, time_range

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("30s", NOW - timedelta(seconds=30)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-11-30T10:00:00Z", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("2026-11-30T11:00:00+01:00", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("2026-11-30T10:00:00", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("1796032800", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("1796032800000", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("1796032800.5", datetime(2026, 11, 30, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_times_people_and_programs_write(value, expected):
    assert parse_time(value, name="since", now=NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "15x", "", "2026-13-01", "1e400", "-5m"])
def test_anything_else_is_a_400_naming_the_parameter(value):
    with pytest.raises(InvalidParameter) as refused:
        parse_time(value, name="until", now=NOW)
    assert refused.value.detail[0]["field"] == "until"
    assert refused.value.detail[0]["rule"] == "time_format"


def test_until_must_come_after_since():
    with pytest.raises(InvalidParameter) as refused:
        time_range("1h", "2h", now=NOW)
    assert refused.value.detail[0]["rule"] == "after_since"
    assert time_range(None, None, now=NOW) == (None, None)


def test_closed_ranges_name_their_days():
    assert closed_days("2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z", now=NOW) == ["2026-11-28"]
    assert closed_days("2026-11-28T23:00:00Z", "2026-11-29T01:00:00Z", now=NOW) == [
        "2026-11-28",
        "2026-11-29",
    ]


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("1h", "2026-11-29T00:00:00Z"),
        ("2026-11-28T00:00:00Z", "30m"),
        ("2026-11-28T00:00:00Z", None),
        ("2026-11-30T11:00:00Z", "2026-11-30T13:00:00Z"),
        ("2026-10-01T00:00:00Z", "2026-11-29T00:00:00Z"),
    ],
)
def test_open_moving_future_or_long_ranges_are_not_closed(since, until):
    assert closed_days(since, until, now=NOW) is None
