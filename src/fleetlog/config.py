"""Settings, built once (by the CLI or a test) and passed down to every runtime."""

import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveInt = Annotated[int, Field(gt=0)]


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
    stats_cache_ttl: timedelta = timedelta(seconds=60)

    commit_max_rows: PositiveInt = 5_000
    max_backlog: PositiveInt = 200_000
    retry_after: timedelta = timedelta(seconds=1)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    redis_url: str | None = None
    database_url: str | None = None

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
