"""Settings, built once (by the CLI or a test) and passed down to every runtime."""

import ipaddress
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PositiveInt = Annotated[int, Field(gt=0)]


def seconds_or_iso(value: object) -> object:
    """Durations may be given as seconds ("30", "0.5") as well as ISO 8601 ("PT30S")."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(seconds_or_iso)]
PositiveFloat = Annotated[float, Field(gt=0)]


def network_list(value: object) -> object:
    """`FLEETLOG_TRUSTED_PROXIES`, `FLEETLOG_LISTENER_ALLOW`: comma-separated addresses or
    networks, or `*` for any peer."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        for item in value:
            if item != "*":
                ipaddress.ip_network(item)
    return value


def asyncpg_url(url: str) -> str:
    """A `postgresql://` URL as SQLAlchemy's asyncpg dialect names it."""
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


class Settings(BaseSettings):
    """Every knob of fleetlog; read from `FLEETLOG_*` variables and an optional `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="FLEETLOG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Path("fleetlog-data")
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: PositiveInt = 1
    instance: str = Field(default_factory=socket.gethostname)
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # OpenTelemetry tracing through FastAPI's native support (exporters from OTEL_* variables).
    otel_tracing: bool = False
    # Where spans go (an OTLP/HTTP base URL); set, or OTEL_EXPORTER_OTLP_*ENDPOINT set, traces.
    otel_endpoint: str | None = None
    # One line per request (api/middleware.py); off by default, as its CPU is 5 % of ingest's.
    access_log: bool = False

    max_body_bytes: PositiveInt = 8 * 1024 * 1024
    # The request bodies one process may hold while reading them, all together.
    max_inflight_body_bytes: PositiveInt = 128 * 1024 * 1024
    stats_cache_ttl: Duration = timedelta(seconds=60)
    query_cache_ttl: Duration = timedelta(minutes=5)
    # Reads (docs/security.md): one answer's bytes, then a cursor; what the query cache keeps.
    max_response_bytes: Annotated[int, Field(ge=64 * 1024)] = 8 * 1024 * 1024
    # A search, a count or a fleet view that runs longer is cancelled in the database.
    query_timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=10)
    query_cache_max_answer_bytes: PositiveInt = 1024 * 1024
    query_cache_max_bytes: PositiveInt = 64 * 1024 * 1024
    cache_redis_url: str | None = None

    commit_max_rows: PositiveInt = 5_000
    max_backlog: PositiveInt = 200_000
    retry_after: Duration = timedelta(seconds=1)
    # The event-time window of every ingest route, around the receive time (see ingest.py).
    max_event_age: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(days=7)
    max_event_skew: Annotated[Duration, Field(ge=timedelta(0))] = timedelta(minutes=10)
    # Shippers' protocols (docs/protocols.md): a longer line is cut there, marked and counted.
    max_line_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    # The Loki stream label that names the device: the first of these a stream has.
    loki_device_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["device_id", "host", "hostname", "job"]
    )
    # Syslog (UDP and TCP) and GELF (UDP) listeners, off unless given a port; the source
    # networks they take logs from (they carry no credentials).
    syslog_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    gelf_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    listener_allow: Annotated[list[str], NoDecode, BeforeValidator(network_list)] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"]
    )
    # How long an idempotency key (an Elasticsearch `_id`) keeps a retry from storing twice.
    idempotency_ttl: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(hours=24)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Readiness: /ready answers 503 below this free disk on the data dir (embedded), or past
    # this share of Redis maxmemory (pipeline), before the store starts refusing writes.
    min_free_disk_bytes: Annotated[int, Field(ge=0)] = 100 * 1024 * 1024
    redis_memory_high_water: Annotated[float, Field(gt=0, le=1)] = 0.95

    redis_url: str | None = None
    database_url: str | None = None
    database_replica_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A replica further behind the primary than this is skipped until it catches up.
    replica_max_lag: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=5)

    redis_namespace: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "fleetlog"
    # Redis Cluster (docs/durability.md): forced on here, else detected from INFO cluster.
    redis_cluster: bool = False
    # Replicas that must have each accepted entry (WAIT) before its 2xx; 0: asynchronous.
    redis_min_replica_acks: Annotated[int, Field(ge=0)] = 0
    # Bounded below the Redis client's socket timeout (redis_client.py), which WAIT must not hit.
    redis_replica_ack_timeout: Annotated[
        Duration, Field(gt=timedelta(0), le=timedelta(seconds=4))
    ] = timedelta(seconds=1)
    stream_shards: Annotated[int, Field(gt=0, le=1024)] = 4
    max_deliveries: PositiveInt = 5
    claim_idle: Duration = timedelta(seconds=30)
    # A consumer (a worker's name in the group) idle this long and holding no entry is removed.
    consumer_idle_removal: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(minutes=10)
    worker_batch_logs: PositiveInt = 5_000
    worker_batch_wait: Duration = timedelta(milliseconds=50)
    worker_read_count: PositiveInt = 500
    worker_backoff_max: Duration = timedelta(seconds=5)
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9464
    partitions_ahead: PositiveInt = 3
    retention_days: PositiveInt | None = None
    # Retention rules (docs/lifecycle.md): how often a pass runs, and where what it removes
    # is archived first (none: not archived).
    retention_interval: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(hours=1)
    archive_dir: Path | None = None

    # Security (docs/security.md). Rates are requests per second, bursts requests.
    insecure: bool = False
    ratelimit_redis_url: str | None = None
    jwt_secret: Annotated[SecretStr, Field(min_length=32)] | None = None
    access_token_ttl: Duration = timedelta(minutes=15)
    refresh_token_ttl: Duration = timedelta(days=7)
    auth_cache_ttl: Duration = timedelta(seconds=5)
    key_rate: PositiveFloat = 10_000.0
    key_burst: PositiveInt = 20_000
    address_rate: PositiveFloat = 5.0
    address_burst: PositiveInt = 20
    max_url_bytes: PositiveInt = 8 * 1024
    max_header_bytes: PositiveInt = 16 * 1024
    # Connections (api/connections.py): bounds a client meets before any route runs.
    max_head_bytes: PositiveInt = 64 * 1024
    head_timeout: Duration = timedelta(seconds=10)
    body_timeout: Duration = timedelta(seconds=30)
    max_connections: PositiveInt = 1024
    # Bytes/s a body must average once it has been arriving for `body_timeout`.
    min_body_rate: PositiveInt = 1024
    trusted_proxies: Annotated[list[str], NoDecode, BeforeValidator(network_list)] = Field(
        default_factory=list
    )

    # Live tail (docs/tail.md): open tails per process, the newest logs a process keeps for
    # tails that fall behind, the comment that keeps an idle one open, the embedded poll.
    max_tails: PositiveInt = 64
    tail_buffer: PositiveInt = 1000
    tail_heartbeat: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=15)
    tail_poll_interval: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(milliseconds=200)

    # Alerts (docs/lifecycle.md): how often rules are evaluated, and how webhooks are sent:
    # retries with exponential backoff from min to max, then a dead letter.
    alert_interval: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=30)
    alert_max_retries: Annotated[int, Field(ge=0, le=100)] = 8
    alert_min_backoff: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=15)
    alert_max_backoff: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(hours=1)
    alert_webhook_timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=10)
    # Where people reach this fleetlog: the webhooks' externalURL and generatorURL.
    alert_external_url: str = ""

    # SIGTERM (docs/operations.md): how long `serve` lets in-flight requests finish, and the
    # worker its batch in hand, before cutting them short. A service manager's stop timeout
    # must be longer, by the time the last commit takes.
    shutdown_timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=10)

    @field_validator("database_replica_urls", "loki_device_labels", mode="before")
    @classmethod
    def split_urls(cls, value: object) -> object:
        """`FLEETLOG_DATABASE_REPLICA_URLS` and `FLEETLOG_LOKI_DEVICE_LABELS` are
        comma-separated lists."""
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @property
    def embedded(self) -> bool:
        """True when fleetlog runs on its own: SQLite with its in-process queue.

        Redis alone (for shared rate limits) keeps fleetlog embedded; PostgreSQL makes it the
        Redis Streams → worker → PostgreSQL pipeline, which then needs Redis too.
        """
        return self.database_url is None

    @property
    def mode(self) -> Literal["embedded", "redis-postgres"]:
        return "embedded" if self.embedded else "redis-postgres"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "fleetlog.sqlite3"

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the log store."""
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{self.sqlite_path}"
        return asyncpg_url(self.database_url)

    @property
    def replica_store_urls(self) -> list[str]:
        return [asyncpg_url(url) for url in self.database_replica_urls]

    @property
    def rate_limit_redis(self) -> str | None:
        """Where rate-limit budgets are shared: their own Redis if given, else the queue's."""
        return self.ratelimit_redis_url or self.redis_url

    @property
    def jwt_secret_path(self) -> Path:
        return self.data_dir / "jwt-secret"

    @property
    def loopback(self) -> bool:
        """True when fleetlog listens on a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def open_allowed(self) -> bool:
        """Whether fleetlog may run open (no credentials at all): on loopback, or if told to."""
        return self.loopback or self.insecure
