"""The times a search is bounded by: `since` and `until` as people and programs write them."""

import re
from datetime import UTC, datetime, timedelta

from fleetlog.errors import InvalidParameter
from fleetlog.event_time import FIRST, LAST

RELATIVE = re.compile(r"([0-9]{1,9})(s|m|h|d|w)")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EPOCH = re.compile(r"-?[0-9]{1,20}(\.[0-9]+)?")
# Epoch numbers past this are milliseconds (1e11 seconds is the year 5138).
MILLISECONDS_FROM = 100_000_000_000


def parse_time(value: str, *, name: str, now: datetime) -> datetime:
    """An RFC 3339 time, epoch seconds or milliseconds, or a span before `now` (`15m`, `2h`,
    `7d`); a 400 naming `name` otherwise."""
    text = value.strip()
    try:
        if (relative := RELATIVE.fullmatch(text)) is not None:
            amount, unit = relative.groups()
            return max(now - timedelta(**{UNITS[unit]: int(amount)}), FIRST)
        if EPOCH.fullmatch(text) is not None:
            number = float(text)
            seconds = number / 1000 if abs(number) >= MILLISECONDS_FROM else number
            return datetime.fromtimestamp(seconds, UTC)
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, OverflowError, OSError):
        raise invalid_time(name, value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return min(max(parsed.astimezone(UTC), FIRST), LAST)
    except OverflowError:
        raise invalid_time(name, value) from None


def invalid_time(name: str, value: str) -> InvalidParameter:
    problem = {
        "field": name,
        "rule": "time_format",
        "message": "must be an RFC 3339 time, epoch seconds or milliseconds, "
        "or a span before now such as 15m, 2h or 7d",
    }
    return InvalidParameter(f"{name} is not a time: {value[:64]!r}", detail=[problem])


def is_relative(value: str) -> bool:
    """Whether `value` is a span before now, which moves with the clock."""
    return RELATIVE.fullmatch(value.strip()) is not None


def closed_days(
    since: str | None, until: str | None, *, now: datetime | None = None, max_days: int = 31
) -> list[str] | None:
    """The event days (UTC, YYYY-MM-DD) of a closed range: both ends written as times (not
    spans before now), ending in the past, over at most `max_days` days. None otherwise."""
    if since is None or until is None or is_relative(since) or is_relative(until):
        return None
    now = now or datetime.now(UTC)
    start = parse_time(since, name="since", now=now)
    end = parse_time(until, name="until", now=now)
    if not start < end <= now or (end - start).days >= max_days:
        return None
    last = (end - timedelta(microseconds=1)).date()
    return [str(start.date() + timedelta(days=n)) for n in range((last - start.date()).days + 1)]


def time_range(
    since: str | None, until: str | None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """`since` (inclusive) and `until` (exclusive), each None when not given; a 400 when
    `until` is not after `since`."""
    now = now or datetime.now(UTC)
    start = None if since is None else parse_time(since, name="since", now=now)
    end = None if until is None else parse_time(until, name="until", now=now)
    if start is not None and end is not None and end <= start:
        problem = {"field": "until", "rule": "after_since", "message": "must be after since"}
        raise InvalidParameter("until is not after since", detail=[problem])
    return start, end
