"""Builders of OTLP/HTTP log export bodies: OTLP/JSON documents and protobuf messages."""

import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

PUMP = {"service.name": "pump-7"}


def now_ns(minutes_ago: float = 0) -> int:
    return time.time_ns() - int(minutes_ago * 60e9)


def json_value(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP/JSON AnyValue; ints as strings, as the JSON mapping writes
    64-bit integers."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": json_attributes(value)}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [json_value(item) for item in value]}}
    return {"stringValue": value}


def json_attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": json_value(value)} for key, value in values.items()]


def json_record(message: str = "pump started", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timeUnixNano": str(now_ns()),
        "severityNumber": 9,
        "body": {"stringValue": message},
    }
    record.update(fields)
    return record


def json_request(
    *records: dict[str, Any], resource: dict[str, Any] = PUMP, scope: dict[str, Any] | None = None
) -> dict[str, Any]:
    scope_logs: dict[str, Any] = {"logRecords": list(records)}
    if scope is not None:
        scope_logs["scope"] = scope
    return {
        "resourceLogs": [
            {"resource": {"attributes": json_attributes(resource)}, "scopeLogs": [scope_logs]}
        ]
    }


def proto_value(value: Any) -> AnyValue:
    return AnyValue(string_value=value) if isinstance(value, str) else AnyValue(int_value=value)


def proto_record(message: str = "pump started", **fields: Any) -> LogRecord:
    values: dict[str, Any] = {
        "time_unix_nano": now_ns(),
        "severity_number": 9,
        "body": AnyValue(string_value=message),
    }
    values.update(fields)
    return LogRecord(**values)


def proto_request(*records: LogRecord, resource: dict[str, Any] = PUMP) -> ExportLogsServiceRequest:
    attributes = [KeyValue(key=key, value=proto_value(value)) for key, value in resource.items()]
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=attributes),
                scope_logs=[ScopeLogs(log_records=list(records))],
            )
        ]
    )
