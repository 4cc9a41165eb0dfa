"""POST /v1/logs from the OpenTelemetry SDK's OTLP/HTTP log exporter (protobuf, gzip) against a
real fleetlog process: embedded, with credentials, and in the pipeline (Redis → worker →
PostgreSQL)."""

import base64
import gzip
from collections.abc import Sequence
from typing import Any

import httpx
from google.rpc import status_pb2
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from fleetlog.auth.principals import Scope
from tests.fixtures.app import client_of, running_app
from tests.fixtures.auth import add_key, secure_settings
from tests.fixtures.pipeline import pipeline_settings, running_worker, settings_env, wait_for
from tests.fixtures.process import Server, running_server
from tests.shippers.otlp_bodies import now_ns, proto_record, proto_request
from tests.shippers.test_otlp import at_microsecond, by_message

TRACE_ID, SPAN_ID = 0x5B8EFFF798038103D269B633813FC60C, 0xEEE19B7EC3C1B174
SCOPE = ("fleetlog.tests.pumps", "2.1")


def exporter_to(server: Server, **headers: str) -> OTLPLogExporter:
    return OTLPLogExporter(
        endpoint=f"{server.url}/v1/logs",
        compression=Compression.Gzip,
        headers=headers,
        timeout=10,
    )


def in_span() -> Any:
    span = SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(span))


def sample_records(resource: dict[str, str]) -> Sequence[ReadableLogRecord]:
    """Three records as the SDK makes them: one in a span with attributes, one with a
    structured body, one with no time of its own (only the time the SDK observed it)."""
    provider = LoggerProvider(resource=Resource.create(resource))
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger(*SCOPE)
    logger.emit(
        timestamp=now_ns(minutes_ago=2),
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body="valve stuck on line 3",
        attributes={"pump.zone": "north", "line": 3},
        context=in_span(),
        event_name="valve.stuck",
    )
    logger.emit(
        timestamp=now_ns(minutes_ago=1),
        severity_number=SeverityNumber.ERROR,
        body={"user": "bob", "action": "login"},
    )
    logger.emit(severity_number=SeverityNumber.INFO2, body="no time of its own")
    provider.shutdown()
    return memory.get_finished_logs()


async def search(url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        answer = await http.get("/api/logs", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    logs: list[dict[str, Any]] = answer.json()["data"]
    return logs


def assert_mapped(logs: list[dict[str, Any]], records: Sequence[ReadableLogRecord]) -> None:
    """The three sample records, each stored once, with the documented mapping."""
    stored = by_message(logs)
    assert sorted(stored) == sorted(
        ['{"user":"bob","action":"login"}', "no time of its own", "valve stuck on line 3"]
    )
    assert {log["device_id"] for log in logs} == {"pump-7"}

    warned = stored["valve stuck on line 3"]
    assert warned["log_level"] == "WARNING"
    assert warned["created_at"] == at_microsecond(records[0].log_record.timestamp or 0)
    data = warned["log_data"]
    assert data["attributes"] == {"pump": {"zone": "north"}, "line": 3}
    assert (data["trace_id"], data["span_id"], data["flags"]) == (
        f"{TRACE_ID:032x}",
        f"{SPAN_ID:016x}",
        1,
    )
    # WARN says no more than the level WARNING: log_data does not repeat it.
    assert not {"severity_number", "severity_text"} & data.keys()
    assert data["event_name"] == "valve.stuck"
    assert data["scope"] == {"name": SCOPE[0], "version": SCOPE[1]}
    assert "name" not in data["resource"]["service"]  # it is the device_id
    assert data["resource"]["telemetry"]["sdk"]["language"] == "python"

    failed = stored['{"user":"bob","action":"login"}']
    assert failed["log_level"] == "ERROR"
    assert failed["log_data"]["body"] == {"user": "bob", "action": "login"}

    untimed = stored["no time of its own"]
    assert untimed["log_level"] == "INFO"
    assert untimed["log_data"]["severity_number"] == SeverityNumber.INFO2.value
    assert untimed["created_at"] == at_microsecond(records[2].log_record.observed_timestamp or 0)


async def test_the_exporter_stores_every_record_once_with_the_mapping(tmp_path):
    records = sample_records({"service.name": "pump-7"})
    with running_server(tmp_path / "data") as server:
        assert exporter_to(server).export(records) is LogRecordExportResult.SUCCESS
        assert_mapped(await search(server.url), records)


async def test_the_batch_processor_stores_every_record_once(tmp_path):
    resource = Resource.create({"service.name": "unknown_service:python", "host.name": "cam-7"})
    provider = LoggerProvider(resource=resource)
    severities = [SeverityNumber.DEBUG, SeverityNumber.INFO, SeverityNumber.WARN]
    with running_server(tmp_path / "data") as server:
        provider.add_log_record_processor(
            BatchLogRecordProcessor(exporter_to(server), max_export_batch_size=64)
        )
        logger = provider.get_logger("fleetlog.tests.frames")
        for i in range(250):
            logger.emit(
                severity_number=severities[i % 3],
                body=f"frame {i} dropped",
                attributes={"frame": i},
            )
        provider.shutdown()
        logs = await search(server.url)
    stored = by_message(logs)
    assert sorted(stored) == sorted(f"frame {i} dropped" for i in range(250))
    assert {log["device_id"] for log in logs} == {"cam-7"}
    levels = ["DEBUG", "INFO", "WARNING"]
    for i in range(250):
        log = stored[f"frame {i} dropped"]
        assert (log["log_level"], log["log_data"]["attributes"]["frame"]) == (levels[i % 3], i)


async def test_with_credentials_on_the_exporter_sends_its_key_in_any_header(tmp_path):
    data_dir = tmp_path / "data"
    key = await add_key(secure_settings(data_dir), "collector", Scope.INGEST)
    reader = await add_key(secure_settings(data_dir), "reader", Scope.READ)
    basic = base64.b64encode(f"otel:{key}".encode()).decode()
    records = sample_records({"service.name": "pump-7"})
    with running_server(data_dir) as server:
        assert exporter_to(server).export(records) is LogRecordExportResult.FAILURE
        assert await search(server.url, {"X-API-Key": reader}) == []
        for headers in (
            {"X-API-Key": key},
            {"Authorization": f"Bearer {key}"},
            {"Authorization": f"Basic {basic}"},
        ):
            exporter = exporter_to(server, **headers)
            assert exporter.export(records) is LogRecordExportResult.SUCCESS
        logs = await search(server.url, {"X-API-Key": reader})
    assert len(logs) == 3 * len(records)


async def test_in_the_pipeline_every_record_is_stored_once_in_postgresql(tmp_path, pipeline, table):
    records = sample_records({"service.name": "pump-7"})
    with running_server(tmp_path / "data", env=settings_env(pipeline)) as server:
        async with running_worker(pipeline):
            assert exporter_to(server).export(records) is LogRecordExportResult.SUCCESS

            async def all_stored() -> bool:
                return await table.count() == len(records)

            await wait_for(all_stored, what="the exported records in PostgreSQL")
            assert_mapped(await search(server.url), records)
    keys = await table.keys()
    assert len(keys) == len(set(keys)) == len(records)


async def test_a_full_backlog_is_a_503_status_with_retry_after(tmp_path, redis_url, pg_url):
    settings = pipeline_settings(redis_url, pg_url, tmp_path, stream_shards=1, max_backlog=3)
    body = gzip.compress(
        proto_request(*(proto_record(f"r{i}") for i in range(3))).SerializeToString()
    )
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    async with running_app(settings) as app, client_of(app) as http:
        assert (await http.post("/v1/logs", content=body, headers=headers)).status_code == 200
        answer = await http.post("/v1/logs", content=body, headers=headers)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["content-type"] == "application/x-protobuf"
    assert status_pb2.Status.FromString(answer.content).code == 14
