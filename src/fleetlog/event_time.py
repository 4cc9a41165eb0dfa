"""Event times: how a log's own timestamp is read, and the window of times fleetlog accepts."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, GetPydanticSchema
from pydantic_core import PydanticCustomError, core_schema

FIRST = datetime(1, 1, 1, tzinfo=UTC)
# Whole seconds: the last microsecond of 9999 is no float, and rounds up into year 10000.
LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def from_epoch_ns(ns: int) -> datetime:
    """Nanoseconds since the epoch (OTLP's and Loki's times), cut to the microsecond.

    A float of whole microseconds is off by under 0.25 µs from 1970 to 2106 (2³² s), so
    `fromtimestamp` rounds it back exactly, for less than half a `timedelta` sum's cost.
    OverflowError, OSError or ValueError for a time no calendar year 1..9999 holds.
    """
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC)


def read_event_time(value: datetime | float | str) -> datetime | float:
    """RFC 3339 times in UTC (naive ones taken as UTC); epoch numbers, sent as numbers or as
    text, as floats: whether one counts seconds or milliseconds, `EventBounds.place` decides."""
    if not isinstance(value, datetime):
        return float(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range", "must fall within years 1..9999 in UTC"
        ) from None


def event_time_schema(_source: Any, _handler: Any) -> core_schema.CoreSchema:
    """A JSON number, a number as text, or an RFC 3339 time; one error naming all three."""
    return core_schema.union_schema(
        [
            core_schema.float_schema(strict=True, allow_inf_nan=False),
            core_schema.str_schema(pattern=r"^-?[0-9]+(\.[0-9]+)?$"),
            core_schema.datetime_schema(),
        ],
        mode="left_to_right",
        custom_error_type="event_time_format",
        custom_error_message="must be an RFC 3339 time, or epoch seconds or milliseconds",
    )


# A datetime, or an epoch number whose unit `EventWindow` settles.
EventTime = Annotated[
    datetime | float,
    GetPydanticSchema(event_time_schema),
    AfterValidator(read_event_time),
]


@dataclass(frozen=True, slots=True)
class EventWindow:
    """The event times fleetlog accepts: at most `max_age` before the receive time and
    `max_skew` after it. One window for every ingest route, whatever its wire format."""

    max_age: timedelta
    max_skew: timedelta

    def at(self, received_at: datetime) -> "EventBounds":
        earliest = received_at - min(self.max_age, received_at - FIRST)
        latest = received_at + min(self.max_skew, LAST - received_at)
        return EventBounds(received_at, earliest, latest)


class EventBounds:
    """The window around one receive time; `place` runs once for every log."""

    __slots__ = (
        "earliest",
        "earliest_ms",
        "earliest_s",
        "latest",
        "latest_ms",
        "latest_s",
        "received_at",
    )

    def __init__(self, received_at: datetime, earliest: datetime, latest: datetime) -> None:
        self.received_at = received_at
        self.earliest = earliest
        self.latest = latest
        self.earliest_s = earliest.timestamp()
        self.latest_s = latest.timestamp()
        self.earliest_ms = self.earliest_s * 1000
        self.latest_ms = self.latest_s * 1000

    def place(self, timestamp: datetime | float) -> datetime | None:
        """The event time a log's timestamp stands for, or None when it falls outside.

        An epoch number is seconds if that reading falls in the window, else milliseconds if
        that one does (both fit only a window reaching back to January 1970).
        """
        if isinstance(timestamp, datetime):
            return timestamp if self.earliest <= timestamp <= self.latest else None
        if self.earliest_s <= timestamp <= self.latest_s:
            return datetime.fromtimestamp(timestamp, UTC)
        if self.earliest_ms <= timestamp <= self.latest_ms:
            return datetime.fromtimestamp(timestamp / 1000, UTC)
        return None
