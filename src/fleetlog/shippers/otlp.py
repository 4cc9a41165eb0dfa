"""OTLP/HTTP logs on the wire (docs/protocols.md, "OTLP/HTTP logs"): an ExportLogsServiceRequest
in protobuf or OTLP/JSON, decoded with the opentelemetry-proto classes, and the answers.

OTLP/JSON is protobuf's JSON mapping with one exception: `traceId` and `spanId` are hex, where
the mapping reads bytes as base64. They are turned into base64 before protobuf's own parser
reads the document (lowerCamelCase keys, 64-bit integers as strings or numbers, unknown fields
ignored). Every answer, success or error, is in the request's encoding, as the spec asks.
"""

import base64
import binascii
import re
from enum import Enum
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from fleetlog.errors import FleetlogError, MalformedBody, UnsupportedMediaType
from fleetlog.shippers.rpc_status import POOL, BadRequest, Status

FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")
ID_FIELDS = ("traceId", "spanId", "trace_id", "span_id")
# google.rpc.Code of an HTTP status; OTLP clients read the HTTP status, people the code.
RPC_CODES = {400: 3, 401: 16, 403: 7, 408: 4, 413: 8, 415: 3, 429: 8, 503: 14}
RPC_UNKNOWN = 2


class Encoding(Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"

    @classmethod
    def of(cls, content_type: str) -> "Encoding":
        media_type = content_type.split(";", 1)[0].strip().lower()
        for encoding in cls:
            if media_type == encoding.value:
                return encoding
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not OTLP; send application/x-protobuf or "
            "application/json",
            detail=[{"field": "Content-Type", "rule": "one_of", "allowed": [e.value for e in cls]}],
        )

    def dump(self, message: Message) -> bytes:
        if self is Encoding.PROTOBUF:
            return message.SerializeToString()
        return json_format.MessageToJson(message, indent=None, descriptor_pool=POOL).encode()


def decode(body: bytes | bytearray, encoding: Encoding) -> ExportLogsServiceRequest:
    """The request in `body`; MalformedBody (400) names what could not be read."""
    if encoding is Encoding.JSON:
        return decode_json(body)
    try:
        return ExportLogsServiceRequest.FromString(bytes(body))
    except DecodeError:
        raise malformed(
            "the body is not an ExportLogsServiceRequest in protobuf: it is truncated or corrupt",
            reason="protobuf",
        ) from None


def decode_json(body: bytes | bytearray) -> ExportLogsServiceRequest:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            reason="json_invalid",
        ) from None
    if not isinstance(document, dict):
        raise malformed("the body must be a JSON object (an ExportLogsServiceRequest)", "json")
    hex_ids_as_base64(document)
    try:
        return json_format.ParseDict(
            document, ExportLogsServiceRequest(), ignore_unknown_fields=True
        )
    except json_format.ParseError as exc:
        raise unparsed(str(exc)) from None


def unparsed(error: str) -> MalformedBody:
    """protobuf's account of a field it could not read ("Failed to parse a field: Failed to
    parse b field: <why>"), told as the field's path and why."""
    failed = list(FAILED_FIELD.finditer(error))
    field = ".".join(match[1] for match in failed) or "body"
    reason = error[failed[-1].end() :] if failed else error
    message = f"{field} is not OTLP/JSON: {reason.rstrip('.')}"
    return MalformedBody(message, detail=[{"field": field, "rule": "json", "message": message}])


def hex_ids_as_base64(document: dict[str, Any]) -> None:
    """In place: each log record's hex trace and span ids, as the base64 protobuf reads."""
    for r, resource_logs in entries(document, "resourceLogs"):
        for s, scope_logs in entries(resource_logs, "scopeLogs"):
            for i, record in entries(scope_logs, "logRecords"):
                for name in ID_FIELDS:
                    value = record.get(name)
                    if isinstance(value, str):
                        record[name] = hex_as_base64(
                            value, f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}].{name}"
                        )


def entries(parent: object, key: str) -> list[tuple[int, dict[str, Any]]]:
    """The objects in `parent[key]` with their indexes; a wrong shape is left to the parser."""
    if not isinstance(parent, dict) or not isinstance(items := parent.get(key), list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, dict)]


def hex_as_base64(value: str, field: str) -> str:
    try:
        return base64.b64encode(binascii.unhexlify(value)).decode()
    except ValueError:
        raise MalformedBody(
            f"{field} must be hex (OTLP/JSON ids are hex, not base64)",
            detail=[{"field": field, "rule": "hex"}],
        ) from None


def malformed(message: str, reason: str) -> MalformedBody:
    return MalformedBody(message, detail=[{"field": "body", "rule": reason, "message": message}])


def export_response(rejected: int, message: str, encoding: Encoding) -> bytes:
    """The 200 answer; `partial_success` only when records were rejected, as the spec asks."""
    response = ExportLogsServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
        )
    return encoding.dump(response)


def status_body(exc: FleetlogError, encoding: Encoding) -> bytes:
    """A google.rpc.Status for an error answer; the fields a detail names as a BadRequest."""
    status = Status(code=RPC_CODES.get(exc.status, RPC_UNKNOWN), message=exc.message)
    violations = [
        {
            "field": item["field"],
            "reason": item["rule"],
            "description": item.get("message", exc.message),
        }
        for item in exc.detail or []
        if isinstance(item, dict) and "field" in item and "rule" in item
    ]
    if violations:
        status.details.add().Pack(BadRequest(field_violations=violations))  # type: ignore[attr-defined]
    return encoding.dump(status)
