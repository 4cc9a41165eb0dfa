"""Workloads: every log of a run is unique, numbered, and valid for the reference API."""

import gzip
import json

import cramjam
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from fleetlog.bench.runner import DEFAULTS
from fleetlog.bench.workload import Workload
from fleetlog.records import MAX_DEVICE_ID, LogBatchIn
from fleetlog.shippers.loki_push_pb2 import PushRequest


def make_workload(**overrides):
    fields = {"name": "reference", "run": "0badcafe", "devices": 7, "batch": 5, "gzip": False}
    return Workload(**{**fields, **overrides})


class TestNumbering:
    def test_requests_cover_every_log_of_the_run_once(self):
        workload = make_workload(batch=3)
        requests = 3 * workload.requests_per_iteration
        numbers = [n for request in range(requests) for n in workload.log_range(request)]
        assert numbers == list(range(3 * workload.logs_per_iteration))

    def test_a_short_last_request_closes_each_iteration(self):
        workload = make_workload(devices=2, batch=30)
        assert workload.requests_per_iteration == 7
        assert len(workload.log_range(6)) == 20
        assert workload.log_range(7) == range(200, 230)

    def test_log_number_matches_the_device_and_sequence_sent(self):
        workload = make_workload()
        for log in LogBatchIn.model_validate_json(workload.body(40)).logs:
            device = workload.device_ids().index(log.device_id)
            sequence = log.log_data["seq"]
            assert workload.log_number(device, sequence) in workload.log_range(40)

    def test_one_iteration_sends_a_hundred_logs_per_device(self):
        workload = make_workload()
        devices = [n % workload.devices for n in range(workload.logs_per_iteration)]
        assert all(devices.count(device) == 100 for device in range(workload.devices))


class TestBodies:
    def test_bodies_are_valid_batches_tagged_with_the_run(self):
        batch = LogBatchIn.model_validate_json(make_workload().body(0))
        assert len(batch.logs) == 5
        assert all(log.log_data["run"] == "0badcafe" for log in batch.logs)
        assert all(log.device_id.startswith("0badcafe-") for log in batch.logs)
        assert "0badcafe" in batch.logs[0].message

    def test_bulk_bodies_are_gzipped(self):
        workload = make_workload(name="bulk", batch=1000, gzip=True, devices=100)
        batch = LogBatchIn.model_validate_json(gzip.decompress(workload.body(3)))
        assert len(batch.logs) == 1000

    def test_device_ids_fit_the_api_limit(self):
        workload = make_workload(devices=10_000)
        assert len(workload.device_id(9_999)) <= MAX_DEVICE_ID


class TestShipperBodies:
    """The shipper workloads carry the bulk workload's logs in each protocol's own encoding."""

    STARTED_NS = 1_764_500_000_000_000_000

    def shipper(self, name):
        gzipped = DEFAULTS[name].gzip
        return make_workload(name=name, batch=20, gzip=gzipped, started_ns=self.STARTED_NS)

    def test_otlp_sends_a_resource_per_device_in_gzipped_protobuf(self):
        workload = self.shipper("otlp")
        assert (workload.path, workload.content_type) == ("/v1/logs", "application/x-protobuf")
        request = ExportLogsServiceRequest.FromString(gzip.decompress(workload.body(3)))
        sent = []
        for resource_logs in request.resource_logs:
            [service] = resource_logs.resource.attributes
            assert service.key == "service.name"
            device = workload.device_ids().index(service.value.string_value)
            for record in resource_logs.scope_logs[0].log_records:
                attributes = {kv.key: kv.value for kv in record.attributes}
                number = workload.log_number(device, attributes["seq"].int_value)
                assert record.time_unix_nano == self.STARTED_NS + number * 1000
                assert (
                    record.severity_text
                    == ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")[number % 5]
                )
                sent.append(number)
        assert sorted(sent) == list(workload.log_range(3))

    def test_es_bulk_sends_create_actions_and_sources_in_gzipped_ndjson(self):
        workload = self.shipper("es-bulk")
        assert (workload.path, workload.content_type) == ("/_bulk", "application/x-ndjson")
        lines = gzip.decompress(workload.body(3)).decode().splitlines()
        assert len(lines) == 40
        sent = []
        for action, source in zip(lines[::2], lines[1::2], strict=True):
            assert json.loads(action) == {"create": {"_index": "fleetlog-bench"}}
            log = json.loads(source)
            device = workload.device_ids().index(log["host"]["name"])
            number = workload.log_number(device, log["seq"])
            assert (
                log["log"]["level"] == ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")[number % 5]
            )
            assert log["@timestamp"].endswith("Z")
            sent.append(number)
        assert sent == list(workload.log_range(3))

    def test_loki_sends_a_stream_per_device_in_snappy_protobuf(self):
        workload = self.shipper("loki")
        assert workload.path == "/loki/api/v1/push"
        assert workload.content_type == "application/x-protobuf"
        body = workload.body(3)
        request = PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
        sent = []
        for stream in request.streams:
            device_id = stream.labels.split('"')[1]
            device = workload.device_ids().index(device_id)
            for entry in stream.entries:
                metadata = {pair.name: pair.value for pair in entry.structuredMetadata}
                number = workload.log_number(device, int(metadata["seq"]))
                ts_ns = entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos
                assert ts_ns == self.STARTED_NS + number * 1000
                sent.append(number)
        assert sorted(sent) == list(workload.log_range(3))
