"""The shipper workloads of `fleetlog bench`: the bulk workload's logs, as shippers send them.

`otlp` is what the OpenTelemetry SDKs and Collector export (a resource per device, gzipped
protobuf), `es-bulk` what Filebeat or Vector send to Elasticsearch (gzipped NDJSON), `loki`
what Promtail and Alloy push (a stream per device, snappy-compressed protobuf). The workload
gzips the bodies its defaults say to (`runner.DEFAULTS`). Each carries the
bulk workload's fields, so `verify.py` audits the store by (device, `log_data.seq`) as for
every other workload.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby

import cramjam
import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from fleetlog.event_time import rfc3339
from fleetlog.shippers.loki_push_pb2 import (
    EntryAdapter,
    LabelPairAdapter,
    PushRequest,
    StreamAdapter,
)

SEVERITY_NUMBERS = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}


@dataclass(frozen=True, slots=True)
class BenchLog:
    device_id: str
    level: str
    message: str
    run: str
    seq: int
    value: float
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Wire:
    """Where and how a workload's requests go."""

    path: str
    content_type: str
    encode: Callable[[Sequence[BenchLog]], bytes]


def by_device(logs: Sequence[BenchLog]) -> list[tuple[str, list[BenchLog]]]:
    ordered = sorted(logs, key=lambda log: log.device_id)
    return [(device, list(group)) for device, group in groupby(ordered, lambda log: log.device_id)]


def attribute(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def otlp_record(log: BenchLog) -> LogRecord:
    return LogRecord(
        time_unix_nano=log.ts_ns,
        observed_time_unix_nano=log.ts_ns,
        severity_number=SEVERITY_NUMBERS[log.level],  # type: ignore[arg-type]
        severity_text=log.level,
        body=AnyValue(string_value=log.message),
        attributes=[
            attribute("run", log.run),
            attribute("seq", log.seq),
            attribute("value", log.value),
        ],
    )


def encode_otlp(logs: Sequence[BenchLog]) -> bytes:
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[attribute("service.name", device)]),
                scope_logs=[ScopeLogs(log_records=[otlp_record(log) for log in group])],
            )
            for device, group in by_device(logs)
        ]
    )
    return request.SerializeToString()


def encode_es_bulk(logs: Sequence[BenchLog]) -> bytes:
    action = b'{"create":{"_index":"fleetlog-bench"}}\n'
    lines = []
    for log in logs:
        source = {
            "@timestamp": rfc3339(datetime.fromtimestamp(log.ts_ns / 1e9, UTC)),
            "host": {"name": log.device_id},
            "log": {"level": log.level},
            "message": log.message,
            "run": log.run,
            "seq": log.seq,
            "value": log.value,
        }
        lines.append(action + orjson.dumps(source) + b"\n")
    return b"".join(lines)


def loki_entry(log: BenchLog) -> EntryAdapter:
    seconds, nanos = divmod(log.ts_ns, 1_000_000_000)
    return EntryAdapter(
        timestamp=Timestamp(seconds=seconds, nanos=nanos),
        line=log.message,
        structuredMetadata=[
            LabelPairAdapter(name="level", value=log.level.lower()),
            LabelPairAdapter(name="run", value=log.run),
            LabelPairAdapter(name="seq", value=str(log.seq)),
            LabelPairAdapter(name="value", value=str(log.value)),
        ],
    )


def encode_loki(logs: Sequence[BenchLog]) -> bytes:
    request = PushRequest(
        streams=[
            StreamAdapter(
                labels=f'{{device_id="{device}", job="fleetlog-bench"}}',
                entries=[loki_entry(log) for log in group],
            )
            for device, group in by_device(logs)
        ]
    )
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


WIRES: dict[str, Wire] = {
    "loki": Wire("/loki/api/v1/push", "application/x-protobuf", encode_loki),
    "otlp": Wire("/v1/logs", "application/x-protobuf", encode_otlp),
    "es-bulk": Wire("/_bulk", "application/x-ndjson", encode_es_bulk),
}
