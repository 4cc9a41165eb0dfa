"""OTLP log records mapped onto fleetlog's log record; docs/protocols.md has the table.

The device is named by the resource (the attributes in DEVICE_ATTRIBUTES, first found); the
level by the severity number, else its text; the message by a string body, else the body as
compact JSON (so its words are searched), the body itself kept in `log_data.body`. Every other
part of a record lands in `log_data` under a key of its own, each key-value list as a JSON
object whose dotted keys are nested, so the query language's `attr.a.b` reaches `a.b`.

The mapping runs for every record: what it reads it holds to log_data's rules as it goes (a
scope's shared part once), so that `Rules.sort` walks again only what it could not vouch for.
"""

import base64
import math
from collections.abc import Iterable, KeysView
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from pydantic_core import PydanticCustomError

from fleetlog.event_time import from_epoch_ns
from fleetlog.records import (
    MAX_LOG_DATA_DEPTH,
    MAX_LOG_DATA_KEYS,
    LogLevel,
    log_data_keys,
    normalise_level,
)
from fleetlog.shippers.intake import Refusal, Shipped

# The resource attributes that name the device, in this order: the semantic conventions'
# device, the service, the host. An SDK left unconfigured names its service `unknown_service`
# (or `unknown_service:<process>`): a host name, when there is one, says more.
DEVICE_ID, SERVICE_NAME, HOST_NAME = "device.id", "service.name", "host.name"
UNNAMED_SERVICE = "unknown_service"
NO_DEVICE = (
    "the resource names no device: it has no device.id, service.name or host.name attribute "
    "(a non-empty string)"
)
# Severity numbers 1-24 in ranges of four: TRACE, DEBUG, INFO, WARN, ERROR, FATAL.
SEVERITY_LEVELS = (
    LogLevel.DEBUG,
    LogLevel.DEBUG,
    LogLevel.INFO,
    LogLevel.WARNING,
    LogLevel.ERROR,
    LogLevel.CRITICAL,
)
# The severities that say no more than the level they give, so log_data does not repeat them:
# the first number of each range but TRACE's (its level is DEBUG), and, in any case, the
# level's name or OTel's short name for it. A severity that says more (TRACE, INFO2, "notice",
# a text at odds with the number) is kept.
PLAIN_NUMBERS = frozenset({5, 9, 13, 17, 21})
PLAIN_TEXTS = {
    LogLevel.DEBUG: frozenset({"debug"}),
    LogLevel.INFO: frozenset({"info"}),
    LogLevel.WARNING: frozenset({"warn", "warning"}),
    LogLevel.ERROR: frozenset({"error"}),
    LogLevel.CRITICAL: frozenset({"fatal", "critical"}),
}
# The AnyValue kinds that are JSON as they are.
SCALARS = frozenset({"string_value", "int_value", "bool_value"})
# Doubles JSON cannot hold, spelt as protobuf's JSON mapping spells them.
NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
# Attributes whose keys have fewer dots nest well within MAX_LOG_DATA_DEPTH wherever they sit.
SHALLOW_DOTS = MAX_LOG_DATA_DEPTH // 2


@dataclass(slots=True)
class Mapped:
    """A request's records as `Shipped`, each with its index among the request's records
    (counted across resources and scopes), and the records refused for naming no device."""

    shipped: list[Shipped]
    indexes: list[int]
    refusals: list[Refusal]
    total: int = 0


def map_request(request: ExportLogsServiceRequest) -> Mapped:
    mapped = Mapped([], [], [])
    for resource_logs in request.resource_logs:
        attributes = resource_logs.resource.attributes
        named = device_of(attributes)
        device = None if named is None else named[1]
        # The attribute that names the device is the record's device_id, not repeated here.
        resource, _ = key_values(
            pair for pair in attributes if named is None or pair.key != named[0]
        )
        for scope_logs in resource_logs.scope_logs:
            records = scope_logs.log_records
            indexes = range(mapped.total, mapped.total + len(records))
            mapped.total += len(records)
            if device is None:
                mapped.refusals += (Refusal(index, "device_id", NO_DEVICE) for index in indexes)
                continue
            context = {"resource": resource, "scope": scope_of(scope_logs.scope)}
            context = {key: value for key, value in context.items() if value}
            context_keys = keys_within_rules(context)
            mapped.shipped += [shipped(record, device, context, context_keys) for record in records]
            mapped.indexes += indexes
    return mapped


def keys_within_rules(log_data: dict[str, Any]) -> int | None:
    """The keys of `log_data` at every depth, or None when it breaks log_data's rules (then each
    record it goes into meets them in `Rules.sort`, which says which)."""
    try:
        return log_data_keys(log_data)
    except PydanticCustomError:
        return None


def device_of(attributes: Iterable[KeyValue]) -> tuple[str, str] | None:
    """The resource attribute that names the device, and the name."""
    named = {
        pair.key: pair.value.string_value
        for pair in attributes
        if pair.key in (DEVICE_ID, SERVICE_NAME, HOST_NAME) and pair.value.string_value
    }
    service = named.get(SERVICE_NAME)
    configured = None if service is None or service.startswith(UNNAMED_SERVICE) else service
    for key, candidate in (
        (DEVICE_ID, named.get(DEVICE_ID)),
        (SERVICE_NAME, configured),
        (HOST_NAME, named.get(HOST_NAME)),
        (SERVICE_NAME, service),
    ):
        if candidate:
            return key, candidate
    return None


def shipped(
    record: LogRecord, device: str, context: dict[str, Any], context_keys: int | None
) -> Shipped:
    """The record as a `Shipped`; `context` (the resource and scope) goes into its log_data,
    whose keys `context_keys` counts (None: it breaks log_data's rules)."""
    log_data: dict[str, Any] = {}
    # The keys of log_data at every depth, while what it holds is known to meet its rules.
    keys = context_keys
    if pairs := record.attributes:
        attributes, attribute_keys = key_values(pairs)
        log_data["attributes"] = attributes
        keys = None if keys is None or attribute_keys is None else keys + attribute_keys
    message, body = message_of(record)
    if body is not None:
        log_data["body"] = body
        keys = None
    if record.trace_id:
        log_data["trace_id"] = record.trace_id.hex()
    if record.span_id:
        log_data["span_id"] = record.span_id.hex()
    if flags := record.flags:
        log_data["flags"] = flags
    number, text = record.severity_number, record.severity_text
    level = SEVERITY_LEVELS[(number - 1) // 4] if 1 <= number <= 24 else level_of(record)
    if number and number not in PLAIN_NUMBERS:
        log_data["severity_number"] = number
    if text and text.lower() not in PLAIN_TEXTS[level]:
        log_data["severity_text"] = text
        if "\x00" in text:
            keys = None
    if event_name := record.event_name:
        log_data["event_name"] = event_name
        if "\x00" in event_name:
            keys = None
    if dropped := record.dropped_attributes_count:
        log_data["dropped_attributes_count"] = dropped
    checked = keys is not None and keys + len(log_data) <= MAX_LOG_DATA_KEYS
    log_data.update(context)
    return Shipped(device, level, message, log_data, event_time(record), checked)


def level_of(record: LogRecord) -> LogLevel:
    """By the severity number; else its text, in any usual spelling or an OTel short name
    (`WARN2`); else INFO."""
    number = record.severity_number
    if 1 <= number <= 24:
        return SEVERITY_LEVELS[(number - 1) // 4]
    text = record.severity_text
    for spelling in (text, text.strip().rstrip("0123456789")):
        level = normalise_level(spelling)
        if isinstance(level, LogLevel):
            return level
    return LogLevel.INFO


def message_of(record: LogRecord) -> tuple[str, Any]:
    """The message, and the body to keep in log_data when it is not a string (else None)."""
    value = record.body
    # A string body, the usual one, is a non-empty string_value: no need to ask which it is.
    if text := value.string_value:
        return text, None
    if value.WhichOneof("value") == "string_value":
        return "", None
    body = any_value(value)
    if body is None:
        return record.event_name, None
    return (body if isinstance(body, str) else orjson.dumps(body).decode()), body


def event_time(record: LogRecord) -> datetime | None:
    """The record's time, else its observed time (fixed64 nanoseconds: always a year ≤ 2554)."""
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    return from_epoch_ns(nanos) if nanos else None


def scope_of(scope: InstrumentationScope) -> dict[str, Any]:
    described = {
        "name": scope.name,
        "version": scope.version,
        "attributes": key_values(scope.attributes)[0],
    }
    return {key: value for key, value in described.items() if value}


def any_value(value: AnyValue) -> Any:
    """An AnyValue as plain JSON: bytes as base64 (as protobuf's JSON mapping writes them),
    non-finite doubles as "NaN", "Infinity" or "-Infinity"; unset as None."""
    kind = value.WhichOneof("value")
    if kind in SCALARS:
        return getattr(value, kind)
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else NON_FINITE.get(number, "NaN")
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)[0]
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    # Unset, or a string index, which means something only in a profiles dictionary.
    return None


def key_values(pairs: Iterable[KeyValue]) -> tuple[dict[str, Any], int | None]:
    """A key-value list as a JSON object (the last of a repeated key wins), dotted keys nested;
    and its keys at every depth when it meets log_data's rules as read (strings without NUL,
    int64s, booleans and finite doubles, nested no deeper than SHALLOW_DOTS), else None.

    Every record has its attributes read here, mostly strings and numbers: those are taken
    without a call of `any_value` each.
    """
    values: dict[str, Any] = {}
    plain = True
    for pair in pairs:
        value = pair.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            values[pair.key] = text = value.string_value
            plain = plain and "\x00" not in text
        elif kind == "int_value" or kind == "bool_value":
            values[pair.key] = getattr(value, kind)
        elif kind == "double_value" and math.isfinite(number := value.double_value):
            values[pair.key] = number
        else:
            values[pair.key] = any_value(value)
            plain = False
    joined = "".join(values)
    plain = plain and "\x00" not in joined
    if "." not in joined:
        return values, len(values) if plain else None
    tree: dict[str, Any] = {}
    keys = sum(place(tree, key, value, keys=values.keys()) for key, value in values.items())
    shallow = max(key.count(".") for key in values) < SHALLOW_DOTS
    return tree, keys if plain and shallow else None


def place(tree: dict[str, Any], key: str, value: Any, *, keys: KeysView[str]) -> int:
    """`http.method` at tree["http"]["method"]. A key that another key is a prefix of (`http`
    and `http.method` both sent), or with an empty part, stays whole, at the top. Returns how
    many keys the tree gained (the value's, and those of the objects made to hold it)."""
    parts = key.split(".")
    prefixes = (".".join(parts[:end]) for end in range(1, len(parts)))
    if not all(parts) or any(prefix in keys for prefix in prefixes):
        tree[key] = value
        return 1
    gained = 1
    node = tree
    for part in parts[:-1]:
        if part not in node:
            node[part] = {}
            gained += 1
        node = node[part]
    node[parts[-1]] = value
    return gained
