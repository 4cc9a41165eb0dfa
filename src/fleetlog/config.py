"""Settings, built once (by the CLI or a test) and passed down to every runtime."""

import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    max_body_bytes: PositiveInt = 8 * 1024 * 1024
    stats_cache_ttl: Duration = timedelta(seconds=60)

    commit_max_rows: PositiveInt = 5_000
    max_backlog: PositiveInt = 200_000
    retry_after: Duration = timedelta(seconds=1)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    redis_url: str | None = None
    database_url: str | None = None

    redis_namespace: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "fleetlog"
    stream_shards: Annotated[int, Field(gt=0, le=1024)] = 4
    max_deliveries: PositiveInt = 5
    claim_idle: Duration = timedelta(seconds=30)
    worker_batch_logs: PositiveInt = 5_000
    worker_batch_wait: Duration = timedelta(milliseconds=50)
    worker_read_count: PositiveInt = 500
    worker_backoff_max: Duration = timedelta(seconds=5)
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9464
    partitions_ahead: PositiveInt = 3
    retention_days: PositiveInt | None = None

    @property
    def embedded(self) -> bool:
        """True when fleetlog runs on its own: in-process queue and SQLite."""
        return self.redis_url is None and self.database_url is None

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
        return self.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
