"""BulkWriter: batches of records into PostgreSQL with COPY, exactly once per ingest key.

Each batch is one transaction: COPY into a per-connection temporary staging table, then
`INSERT … SELECT … ON CONFLICT DO NOTHING` into `logs`, whose unique key is
`(ingest_key, created_at)`. A batch delivered again (a worker died between commit and
acknowledgement) therefore adds nothing; what it would have added is counted as duplicates.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from fleetlog.errors import RejectedBatch, StoreUnavailable
from fleetlog.metrics import STORE_COMMIT_ROWS, STORE_COMMIT_SECONDS
from fleetlog.records import LogRecord
from fleetlog.store import partitions

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0
COLUMNS = (
    "device_id",
    "log_level",
    "message",
    "log_data",
    "created_at",
    "received_at",
    "ingest_key",
)
STAGING = "logs_staging"
CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (device_id text, log_level text, message text, "
    "log_data jsonb, created_at timestamptz, received_at timestamptz, ingest_key text) "
    "ON COMMIT DELETE ROWS"
)
INSERT_STAGED = (
    f"INSERT INTO logs ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM {STAGING} "
    "ON CONFLICT DO NOTHING"
)
# Errors caused by the rows themselves; anything else means the store is not usable now.
ROW_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)
DOWN_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Keyed:
    """A record with its ingest key (the message id its client got)."""

    key: str
    record: LogRecord


def copy_row(keyed: Keyed) -> tuple[Any, ...]:
    r = keyed.record
    return (r.device_id, r.level, r.message, r.log_data, r.ts, r.received_at, keyed.key)


def encode_jsonb(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)


def decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def prepare_connection(conn: asyncpg.Connection) -> None:
    # jsonb straight from/to orjson bytes (binary format: a version byte, then the JSON).
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=encode_jsonb,
        decoder=decode_jsonb,
        format="binary",
    )
    await conn.execute(CREATE_STAGING)


class BulkWriter:
    """Writes batches to PostgreSQL's `logs` and keeps its day partitions.

    Args:
        dsn: a `postgresql://` URL.
        max_connections: most connections at once (one per batch in flight).
    """

    def __init__(self, dsn: str, *, max_connections: int) -> None:
        self.dsn = dsn
        self.max_connections = max_connections
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        # min_size=0: a worker starts (and waits) while PostgreSQL is still down.
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=0,
            max_size=self.max_connections,
            init=prepare_connection,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=COMMAND_TIMEOUT_S,
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("BulkWriter.open() was not called")
        return self._pool

    async def write(self, batch: Sequence[Keyed]) -> int:
        """Store the batch in one transaction; returns how many rows were new."""
        started = time.perf_counter()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.copy_records_to_table(
                    STAGING, records=[copy_row(k) for k in batch], columns=COLUMNS
                )
                status = await conn.execute(INSERT_STAGED)
        except ROW_ERRORS as exc:
            raise RejectedBatch(f"PostgreSQL refused the batch: {exc}") from exc
        except DOWN_ERRORS as exc:
            log.warning("COPY of %d logs failed: %s", len(batch), exc)
            raise StoreUnavailable("PostgreSQL cannot commit", retry_after=RETRY_AFTER_S) from exc
        STORE_COMMIT_SECONDS.observe(time.perf_counter() - started)
        STORE_COMMIT_ROWS.observe(len(batch))
        return int(status.split()[-1])

    async def maintain(
        self, *, ahead: int, retention_days: int | None, today: datetime | None = None
    ) -> partitions.Maintenance:
        """Create the coming days' partitions and drop those past the retention."""
        day = (today or datetime.now(UTC)).date()
        try:
            async with self.pool.acquire() as conn:
                return await partitions.maintain(
                    conn, today=day, ahead=ahead, retention_days=retention_days
                )
        except DOWN_ERRORS as exc:
            raise StoreUnavailable(
                "PostgreSQL cannot maintain partitions", retry_after=RETRY_AFTER_S
            ) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
