"""GELF messages (Graylog Extended Log Format 1.1) mapped onto a `Shipped`.

One JSON object per message, sent plain, gzip'ed or zlib'ed: the compression is told by the
payload's first bytes, the way Graylog's inputs tell it, since UDP has no header to say it.
"""

import zlib
from datetime import UTC, datetime
from typing import Any

import orjson

from fleetlog.errors import FleetlogError, PayloadTooLarge
from fleetlog.listeners.syslog import SEVERITY_LEVELS
from fleetlog.records import LEVEL_ALIASES, LogLevel
from fleetlog.shippers.intake import Shipped

GZIP_MAGIC = b"\x1f\x8b"
KEPT_FIELDS = ("full_message", "facility", "file", "line")


class InvalidGelf(FleetlogError):
    """A GELF message that cannot be read; `detail` names the field and the rule."""

    status = 400
    code = "invalid_gelf"

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message, detail=[{"field": field, "rule": rule, "message": message}])


def is_zlib(payload: bytes | bytearray) -> bool:
    """A zlib header: deflate with a window that fits, and its check bits (RFC 1950)."""
    return (
        len(payload) >= 2
        and payload[0] & 0x0F == 8
        and payload[0] >> 4 <= 7
        and (payload[0] << 8 | payload[1]) % 31 == 0
    )


def inflate(payload: bytes | bytearray, *, limit: int) -> bytes | bytearray:
    """The JSON of a payload, its gzip or zlib undone; never inflated past `limit` bytes."""
    if not (payload.startswith(GZIP_MAGIC) or is_zlib(payload)):
        return payload
    inflater = zlib.decompressobj(32 + 15)
    try:
        data = inflater.decompress(payload, limit + 1)
    except zlib.error:
        raise InvalidGelf("body", "compression", "the gzip or zlib payload is broken") from None
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the payload inflates past {limit} bytes",
            detail=[{"field": "body", "rule": "max_bytes", "limit": limit}],
        )
    if not inflater.eof:
        raise InvalidGelf("body", "compression", "the gzip or zlib payload is truncated")
    return data


def parse_gelf(payload: bytes | bytearray) -> Shipped:
    """One GELF message: `host` names the device, `short_message` is the message."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise InvalidGelf("body", "json_invalid", "a GELF message is a JSON object") from None
    if not isinstance(message, dict):
        raise InvalidGelf("body", "object", "a GELF message is a JSON object")
    host = message.get("host")
    if not isinstance(host, str) or not host:
        raise InvalidGelf("host", "required", "host must be a non-empty string")
    short = message.get("short_message")
    if not isinstance(short, str) or not short:
        raise InvalidGelf("short_message", "required", "short_message must be a non-empty string")
    log_data = {key: message[key] for key in KEPT_FIELDS if key in message}
    log_data.update(
        (key[1:], value) for key, value in message.items() if key.startswith("_") and key != "_"
    )
    return Shipped(
        host, level(message.get("level")), short, log_data, event_time(message.get("timestamp"))
    )


def level(value: Any) -> LogLevel:
    """GELF's level is a syslog severity number; its absence is INFO, and a level name
    (some shippers send `"info"`) is read as fleetlog reads one."""
    if value is None:
        return LogLevel.INFO
    if isinstance(value, str):
        if value.strip().lower() in LEVEL_ALIASES:
            return LEVEL_ALIASES[value.strip().lower()]
        value = int(value) if value.strip().isdigit() else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return SEVERITY_LEVELS[value]
    raise InvalidGelf("level", "severity", "level must be a syslog severity from 0 to 7")


def event_time(value: Any) -> datetime | None:
    """GELF's timestamp: seconds since the epoch, with a fraction."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise InvalidGelf("timestamp", "epoch_seconds", "timestamp must be seconds since the epoch")
