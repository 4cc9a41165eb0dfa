"""Every Prometheus metric of fleetlog. Labels stay bounded: never a device id or a raw path."""

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)

HTTP_REQUESTS = Counter(
    "fleetlog_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "fleetlog_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
LOGS_ACCEPTED = Counter(
    "fleetlog_logs_accepted_total",
    "Logs acknowledged to clients as durable, by level.",
    ["level"],
)
INGEST_BATCH_SIZE = Histogram(
    "fleetlog_ingest_batch_size_logs",
    "Logs per accepted ingest request.",
    buckets=SIZE_BUCKETS,
)
INGEST_REJECTED = Counter(
    "fleetlog_ingest_rejected_total",
    "Ingest requests refused, by reason (validation, too_large, backlog_full, unavailable...).",
    ["reason"],
)
STORE_COMMIT_SECONDS = Histogram(
    "fleetlog_store_commit_seconds",
    "Time to write and commit one batch of logs to the store.",
    buckets=LATENCY_BUCKETS,
)
STORE_COMMIT_ROWS = Histogram(
    "fleetlog_store_commit_rows",
    "Logs per store commit (group commit of concurrent requests).",
    buckets=SIZE_BUCKETS,
)


def exposition() -> bytes:
    """The text exposition; summed over all processes when several serve the same port."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
