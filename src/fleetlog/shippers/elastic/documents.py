"""A bulk source mapped onto fleetlog's record (the table in docs/protocols.md).

The device is `host.name`, else `host` (text), else `agent.name`; the level `log.level`, else
`level`, else `severity` (any usual spelling), else INFO; `message` the message; `@timestamp`
the event time (RFC 3339, or epoch milliseconds as Elasticsearch reads a number). A dotted field
(`"host.name": …`) and nested objects (`"host": {"name": …}`) are the same field. The fields
taken leave the source; the rest is `log_data`, with the index as `_index` and the `_id` given.
Mapping consumes the action's source: it becomes the record's `log_data` (no copy per log).
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fleetlog.records import LogLevel, normalise_level
from fleetlog.shippers.elastic.ndjson import Action, Problem
from fleetlog.shippers.intake import Shipped

Taken = TypeVar("Taken")

DEVICE_FIELDS = ("host.name", "host", "agent.name")
LEVEL_FIELDS = ("log.level", "level", "severity")
EPOCH_MILLIS = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def shipped(action: Action) -> Shipped | Problem:
    """The record of an `index` or `create` action's source (which it takes as `log_data`), or
    why it cannot be one."""
    data = action.source
    device = first(data, DEVICE_FIELDS, text)
    if device is None:
        return Problem(
            "document_parsing_exception",
            "the source names no device: give host.name, host or agent.name",
            rule="device_id",
        )
    ts = None
    if "@timestamp" in data:
        ts = event_time(data.pop("@timestamp"))
        if ts is None:
            return Problem(
                "document_parsing_exception",
                "failed to parse field [@timestamp]: give an RFC 3339 time or epoch milliseconds",
                rule="event_time_format",
            )
    level = first(data, LEVEL_FIELDS, level_of) or LogLevel.INFO
    message = take(data, "message", string)
    data["_index"] = action.index
    if action.id is not None:
        data["_id"] = action.id
    return Shipped(device, level, message or "", data, ts)


def first(
    data: dict[str, Any], paths: tuple[str, ...], read: Callable[[Any], Taken | None]
) -> Taken | None:
    for path in paths:
        value = take(data, path, read)
        if value is not None:
            return value
    return None


def take(data: dict[str, Any], path: str, read: Callable[[Any], Taken | None]) -> Taken | None:
    """What `read` makes of the field at `path`, which then leaves `data` (and an object it
    leaves empty goes too); None, with `data` as it was, when there is nothing to read."""
    if path in data:
        value = read(data[path])
        if value is not None:
            del data[path]
            return value
    head, _, rest = path.partition(".")
    inner = data.get(head)
    if not rest or not isinstance(inner, dict):
        return None
    value = take(inner, rest, read)
    if value is not None and not inner:
        del data[head]
    return value


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def level_of(value: Any) -> LogLevel | None:
    level = normalise_level(value)
    return level if isinstance(level, LogLevel) else None


def event_time(value: Any) -> datetime | None:
    """`@timestamp` as Elasticsearch's default date format reads it; None if it cannot."""
    # A date has a `-` past its first character, epoch milliseconds never: most shippers send
    # dates, which then skip the pattern.
    if isinstance(value, str) and "-" not in value[1:] and EPOCH_MILLIS.fullmatch(value):
        value = float(value)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is UTC:
                return parsed
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None
