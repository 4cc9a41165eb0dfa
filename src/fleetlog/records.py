"""Log records: what clients send, what fleetlog keeps, and what it answers."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import repeat
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from fleetlog.event_time import EventTime

MAX_DEVICE_ID = 50
MAX_MESSAGE = 5000
MAX_BATCH = 1000
MAX_LOG_DATA_DEPTH = 16
MAX_LOG_DATA_KEYS = 1000
# Every store and wire format fleetlog uses (jsonb, orjson) holds exactly these numbers.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


# Each level's name as a plain str, looked up for every log: an enum's `.value` costs ~0.1 µs.
LEVEL_NAMES: dict[LogLevel, str] = {level: level.value for level in LogLevel}

LEVEL_ALIASES: dict[str, LogLevel] = {
    "trace": LogLevel.DEBUG,
    "debug": LogLevel.DEBUG,
    "info": LogLevel.INFO,
    "information": LogLevel.INFO,
    "notice": LogLevel.INFO,
    "warn": LogLevel.WARNING,
    "warning": LogLevel.WARNING,
    "err": LogLevel.ERROR,
    "error": LogLevel.ERROR,
    "crit": LogLevel.CRITICAL,
    "critical": LogLevel.CRITICAL,
    "fatal": LogLevel.CRITICAL,
    "alert": LogLevel.CRITICAL,
    "emerg": LogLevel.CRITICAL,
    "emergency": LogLevel.CRITICAL,
    "panic": LogLevel.CRITICAL,
}


def normalise_level(value: object) -> object:
    """Map any usual spelling of a level (`warn`, `Err`, `fatal`) onto its canonical name."""
    if isinstance(value, str):
        return LEVEL_ALIASES.get(value.strip().lower(), value)
    return value


def nul_error() -> PydanticCustomError:
    # PostgreSQL text and jsonb cannot hold U+0000; refuse it at the edge for every store.
    return PydanticCustomError("no_nul", "must not contain NUL characters")


def reject_nul(value: str) -> str:
    if "\x00" in value:
        raise nul_error()
    return value


class NulFree:
    """`reject_nul` as a text field's annotation: a NUL is refused by the `no_nul` rule, and the
    field's JSON schema states it (a pattern), so a value the schema allows is never refused."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(reject_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = NUL_FREE_PATTERN
        return json_schema


NUL_FREE_PATTERN = r"^[^\x00]*$"
NUL_FREE = NulFree()


def check_log_data(value: dict[str, Any]) -> dict[str, Any]:
    """Bound `log_data`: nesting depth, number of keys, no NUL, numbers every store can hold."""
    log_data_keys(value)
    return value


def log_data_keys(value: dict[str, Any]) -> int:
    """The keys of `value` at every depth, once it is held to `check_log_data`'s rules.

    Walked a level at a time, with the JSON types tested first: this runs for every log, and
    most `log_data` is one flat object, checked without the walk's lists.
    """
    level: list[Any] = []
    keys = check_container(value, level)
    depth = 2
    while level:
        if keys > MAX_LOG_DATA_KEYS:
            break
        nested: list[Any] = []
        for node in level:
            if depth == MAX_LOG_DATA_DEPTH and node:
                raise PydanticCustomError(
                    "max_depth",
                    "must not nest deeper than {limit} levels",
                    {"limit": MAX_LOG_DATA_DEPTH},
                )
            keys += check_container(node, nested)
            if keys > MAX_LOG_DATA_KEYS:
                break
        level = nested
        depth += 1
    if keys > MAX_LOG_DATA_KEYS:
        raise PydanticCustomError(
            "max_keys", "must not hold more than {limit} keys", {"limit": MAX_LOG_DATA_KEYS}
        )
    return keys


def check_container(node: dict[str, Any] | list[Any], nested: list[Any]) -> int:
    """Check the keys and scalars of a dict or list, put its containers on `nested`; returns
    its number of keys."""
    pairs = node.items() if isinstance(node, dict) else zip(repeat(""), node, strict=False)
    for key, item in pairs:
        if "\x00" in key:
            raise nul_error()
        kind = type(item)
        if kind is str:
            if "\x00" in item:
                raise nul_error()
        elif kind is int:
            check_int(item)
        elif kind is float:
            check_float(item)
        elif kind is dict or kind is list:
            nested.append(item)
        elif kind is not bool and item is not None:
            check_subclassed(item, nested)
    return len(node) if isinstance(node, dict) else 0


def check_subclassed(item: Any, nested: list[Any]) -> None:
    """The same rules for subclasses of the JSON types (from Python callers, never from JSON)."""
    if isinstance(item, str):
        reject_nul(item)
    elif isinstance(item, int) and not isinstance(item, bool):
        check_int(item)
    elif isinstance(item, float):
        check_float(item)
    elif isinstance(item, dict | list):
        nested.append(item)


def int64_error() -> PydanticCustomError:
    return PydanticCustomError("int64_range", "numbers must fit in a signed 64-bit integer")


def check_int(value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise int64_error()


def check_float(value: float) -> None:
    if not math.isfinite(value):
        raise PydanticCustomError("finite_number", "numbers must be finite")


DeviceId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_DEVICE_ID),
    NUL_FREE,
]
Level = Annotated[LogLevel, BeforeValidator(normalise_level)]
Message = Annotated[
    str,
    Field(min_length=1, max_length=MAX_MESSAGE),
    NUL_FREE,
]
LogData = Annotated[
    dict[str, Any],
    BeforeValidator(lambda value: {} if value is None else value),
    AfterValidator(check_log_data),
]


class LogIn(BaseModel):
    """One log as a device sends it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "device_id": "device_001",
                "log_level": "ERROR",
                "message": "Database connection failed",
                "log_data": {"error_code": "DB_CONN_001", "retry_count": 3},
                "timestamp": "2026-11-25T10:30:00Z",
            }
        }
    )

    device_id: DeviceId
    log_level: Level
    message: Message
    log_data: LogData = Field(default_factory=dict)
    timestamp: EventTime | None = Field(
        default=None,
        description="When the event happened: RFC 3339, or epoch seconds or milliseconds.",
    )


class LogBatchIn(BaseModel):
    logs: Annotated[list[LogIn], Field(min_length=1, max_length=MAX_BATCH)]


@dataclass(slots=True)
class LogRecord:
    """An accepted log, as it travels through the queue into the store.

    Not frozen: one is made for every accepted log, and a frozen dataclass's `__init__` costs
    four times as much. Nothing changes a record once made.
    """

    device_id: str
    level: str
    message: str
    log_data: dict[str, Any]
    ts: datetime
    received_at: datetime

    @classmethod
    def accept(cls, log: LogIn, *, ts: datetime, received_at: datetime) -> "LogRecord":
        return cls(
            device_id=log.device_id,
            level=LEVEL_NAMES[log.log_level],
            message=log.message,
            log_data=log.log_data,
            ts=ts,
            received_at=received_at,
        )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
WIRE_VERSION = 1
# How every encoded batch begins (orjson writes no spaces): the worker's check of an entry.
WIRE_HEADER = b"[%d,[[" % WIRE_VERSION
LEVELS = frozenset(LogLevel)


class UndecodableRecords(ValueError):
    """Bytes that are not a batch in the wire format: a poison entry."""


def epoch_us(value: datetime) -> int:
    return (value - EPOCH) // MICROSECOND


def encode_records(records: Sequence[LogRecord]) -> bytes:
    """The one wire format between producer and consumer, compact JSON arrays:
    `[1, [[device_id, level, message, log_data, ts_us, received_us], ...]]`, times in epoch µs.
    """
    rows = [
        [r.device_id, r.level, r.message, r.log_data, epoch_us(r.ts), epoch_us(r.received_at)]
        for r in records
    ]
    return orjson.dumps([WIRE_VERSION, rows])


def decode_record(row: Any) -> LogRecord:
    device_id, level, message, log_data, ts_us, received_us = row
    if not (
        isinstance(device_id, str)
        and level in LEVELS
        and isinstance(message, str)
        and isinstance(log_data, dict)
        and type(ts_us) is int
        and type(received_us) is int
    ):
        raise TypeError("a field has the wrong type")
    return LogRecord(
        device_id=device_id,
        level=level,
        message=message,
        log_data=log_data,
        ts=EPOCH + ts_us * MICROSECOND,
        received_at=EPOCH + received_us * MICROSECOND,
    )


def check_wire_header(data: bytes) -> None:
    """Refuse bytes that do not even begin as `encode_records` output (the store unpacks the
    rest, and refuses a batch with a malformed record)."""
    if not data.startswith(WIRE_HEADER):
        raise UndecodableRecords(f"not a batch of records: it does not begin with {WIRE_HEADER!r}")


def decode_records(data: bytes) -> list[LogRecord]:
    """The records `encode_records` wrote; `UndecodableRecords` for anything else."""
    try:
        version, rows = orjson.loads(data)
        if version != WIRE_VERSION:
            raise ValueError(f"unknown wire version {version!r}")
        records = [decode_record(row) for row in rows]
    except (ValueError, TypeError, OverflowError) as exc:
        raise UndecodableRecords(f"not a batch of records: {exc}") from exc
    if not records:
        raise UndecodableRecords("an empty batch")
    return records


class QueuedLog(BaseModel):
    status: Literal["queued"] = "queued"
    message_id: str
    received_at: datetime


class QueuedBatch(BaseModel):
    status: Literal["queued"] = "queued"
    count: int
    message_ids: list[str]
    received_at: datetime


class LogOut(BaseModel):
    """A stored log; `created_at` is the event time (the device's own when it sent one)."""

    id: int
    device_id: str
    log_level: str
    message: str
    log_data: dict[str, Any]
    created_at: datetime
    received_at: datetime


class LogsPage(BaseModel):
    total: int
    source: Literal["cache", "database"]
    data: list[LogOut]
    next_cursor: str | None = Field(
        default=None,
        description="Where the next page begins (pass it as `cursor`); absent on the last page.",
    )


class FoundLogs(BaseModel):
    data: list[LogOut]
    next_cursor: str | None = Field(
        default=None,
        description="Where the next page begins (pass it as `cursor`); absent on the last page.",
    )
    took_ms: int = Field(description="How long the search took in the server")


class Stats(BaseModel):
    total_logs: int
    logs_by_level: dict[str, int]
    recent_devices: list[str]
    generated_at: datetime
    max_age_s: int = Field(description="How old this answer may be: it is cached for that long.")


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="unhealthy (503): a part does not answer; degraded (200): every part "
        "answers but the store refuses writes now (full disk, Redis at maxmemory)."
    )
    instance: str
    mode: Literal["embedded", "redis-postgres"]
    checks: dict[str, bool]
    timestamp: datetime


class Readiness(BaseModel):
    ready: bool
    instance: str
    checks: dict[str, bool] = Field(description="Every check of /health; all must pass.")
    backlog: int = Field(description="Accepted logs not yet in the store.")
    max_backlog: int = Field(description="Past this backlog, ingest answers 503.")
    timestamp: datetime
