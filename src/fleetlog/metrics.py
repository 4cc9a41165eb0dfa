"""Every Prometheus metric of fleetlog. Labels stay bounded: never a device id or a raw path."""

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
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
SHIPPED_RECORDS = Counter(
    "fleetlog_shipped_records_total",
    "Records that came by a shipper's protocol (loki, otlp, elastic, gelf, syslog), by "
    "outcome: accepted, refused (a rule of fleetlog's), duplicate (an idempotency key seen).",
    ["protocol", "outcome"],
)
LINES_TRUNCATED = Counter(
    "fleetlog_lines_truncated_total",
    "Shipped lines longer than FLEETLOG_MAX_LINE_BYTES, cut and marked, by protocol.",
    ["protocol"],
)
LISTENER_LINES = Counter(
    "fleetlog_listener_lines_total",
    "Lines the syslog and GELF listeners read, by listener (syslog_udp, syslog_tcp, gelf_udp) "
    "and outcome (accepted, invalid, refused, dropped, unlisted_source).",
    ["listener", "outcome"],
)
LISTENER_PAUSES = Counter(
    "fleetlog_listener_pauses_total",
    "Times a TCP listener stopped reading a connection because the backlog was full or the "
    "store unavailable, until it could take the lines read (by listener).",
    ["listener"],
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
# The embedded store has one writer at a time: summed over a server's processes, the rate of
# the held time's sum is how busy it is (1: every second of it), the wait what that costs.
SQLITE_WRITE_WAIT_SECONDS = Histogram(
    "fleetlog_sqlite_write_wait_seconds",
    "Embedded: time a group commit waited for its turn to write (another process writing).",
    buckets=LATENCY_BUCKETS,
)
SQLITE_WRITE_HELD_SECONDS = Histogram(
    "fleetlog_sqlite_write_held_seconds",
    "Embedded: time a group commit held the turn to write (the store's only writer).",
    buckets=LATENCY_BUCKETS,
)

AUTH_REFUSED = Counter(
    "fleetlog_auth_refused_total",
    "Requests refused by authentication or authorization, by reason (missing, invalid, scope).",
    ["reason"],
)
RATE_LIMITED = Counter(
    "fleetlog_rate_limited_total",
    "Requests refused with 429 by a rate limit, by what was limited (key, user, address).",
    ["subject"],
)
RATE_LIMIT_ERRORS = Counter(
    "fleetlog_rate_limit_errors_total",
    "Rate-limit checks that could not reach Redis (the request was let through).",
)

STREAM_BACKLOG = Gauge(
    "fleetlog_stream_backlog_logs",
    "Logs accepted into a shard's stream and not yet stored, by shard.",
    ["shard"],
    multiprocess_mode="mostrecent",
)
STREAM_PENDING = Gauge(
    "fleetlog_stream_pending_entries",
    "Stream entries read by a worker and not yet acknowledged, by shard.",
    ["shard"],
    multiprocess_mode="mostrecent",
)
STREAM_OLDEST_AGE = Gauge(
    "fleetlog_stream_oldest_entry_age_seconds",
    "Age of a shard's oldest entry not yet acknowledged (pending or undelivered); 0 when none.",
    ["shard"],
    multiprocess_mode="mostrecent",
)
DEAD_LETTER_ENTRIES = Gauge(
    "fleetlog_dead_letter_entries",
    "Entries in a shard's dead-letter stream, waiting to be replayed or purged.",
    ["shard"],
    multiprocess_mode="mostrecent",
)
WORKER_BATCH_LOGS = Histogram(
    "fleetlog_worker_batch_logs",
    "Logs per batch the worker gathered from a shard.",
    buckets=SIZE_BUCKETS,
)
LOGS_STORED = Counter(
    "fleetlog_logs_stored_total",
    "Logs the worker committed to PostgreSQL (new rows only).",
)
LOGS_DUPLICATE = Counter(
    "fleetlog_logs_duplicate_total",
    "Logs of redelivered entries that were in the store already and were skipped.",
)
DEAD_LETTERS = Counter(
    "fleetlog_dead_letters_total",
    "Stream entries moved to a dead-letter stream, by shard and reason.",
    ["shard", "reason"],
)
WORKER_RETRIES = Counter(
    "fleetlog_worker_retries_total",
    "Times the worker backed off because Redis or PostgreSQL could not be used, by reason.",
    ["reason"],
)

CACHE_REQUESTS = Counter(
    "fleetlog_cache_requests_total",
    "Query cache look-ups, by cache (logs, stats) and outcome (hit, miss, error).",
    ["cache", "outcome"],
)

READS = Counter(
    "fleetlog_store_reads_total",
    "Store reads, by role of the database that served them (primary, replica) and outcome "
    "(ok, error; lagging: a replica skipped for being behind).",
    ["role", "outcome"],
)
REPLICA_LAG = Gauge(
    "fleetlog_replica_lag_seconds",
    "How far each read replica was behind the primary when last probed, by its index in "
    "FLEETLOG_DATABASE_REPLICA_URLS (+Inf while unknown: not streaming, or unreachable).",
    ["replica"],
    multiprocess_mode="mostrecent",
)

OPEN_CONNECTIONS = Gauge(
    "fleetlog_open_connections",
    "HTTP connections open now (summed over the server processes).",
    multiprocess_mode="livesum",
)
CONNECTIONS_CLOSED = Counter(
    "fleetlog_connections_closed_total",
    "Connections fleetlog closed or refused itself, by reason (head_timeout, body_timeout, "
    "body_too_slow, head_too_large, trailers_too_large, malformed, evicted, over_capacity).",
    ["reason"],
)

TAILS = Gauge(
    "fleetlog_tails",
    "Live tails open now (summed over the server processes).",
    multiprocess_mode="livesum",
)
TAIL_DROPPED = Counter(
    "fleetlog_tail_dropped_total",
    "Logs a live tail's query matched that its client never got: it fell behind the window "
    "of newest logs (FLEETLOG_TAIL_BUFFER).",
)

RETENTION_LOGS_DELETED = Counter(
    "fleetlog_retention_logs_deleted_total",
    "Logs retention removed, by how: with their day partition, or in batches.",
    ["how"],
)
RETENTION_PASSES = Counter(
    "fleetlog_retention_passes_total",
    "Retention passes by outcome (done, busy: another process was at it, failed).",
    ["outcome"],
)


def exposition() -> bytes:
    """The text exposition; summed over all processes when several serve the same port."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


ALERT_NOTIFICATIONS = Counter(
    "fleetlog_alert_notifications_total",
    "Alert transitions notified, by status (firing, resolved).",
    ["status"],
)
ALERT_DELIVERIES = Counter(
    "fleetlog_alert_deliveries_total",
    "Webhook delivery attempts, by outcome (delivered, retried, dead).",
    ["outcome"],
)
ALERT_EVALUATIONS = Counter(
    "fleetlog_alert_evaluations_total",
    "Rounds of alert evaluation, by outcome (done, stale_fence, failed).",
    ["outcome"],
)

DEPENDENCY_UP = Gauge(
    "fleetlog_dependency_up",
    "1 when the part answered this API process's last probe, else 0, by dependency (redis, "
    "postgres; embedded: sqlite, queue).",
    ["dependency"],
    multiprocess_mode="mostrecent",
)
DATA_DIR_FREE_BYTES = Gauge(
    "fleetlog_data_dir_free_bytes",
    "Bytes free to fleetlog on the disk of its data dir (the embedded store's).",
    multiprocess_mode="mostrecent",
)
DATA_DIR_SIZE_BYTES = Gauge(
    "fleetlog_data_dir_size_bytes",
    "Size in bytes of the disk of fleetlog's data dir.",
    multiprocess_mode="mostrecent",
)
CLIENT_DISCONNECTS = Counter(
    "fleetlog_client_disconnects_total",
    "Requests whose client closed the connection before sending the whole body (answered "
    "400 to no one, nothing stored), by route template.",
    ["route"],
)
