"""BulkWriter: batches of stream entries into PostgreSQL, exactly once per entry.

The worker hands over each entry as it came from the stream, still in the wire format
(`records.encode_records`); PostgreSQL unpacks it. Each batch is one transaction: COPY the
entries into a per-connection temporary staging table, then one statement records them in the
`stored_entries` ledger, `ON CONFLICT DO NOTHING`, and expands those that were new into rows of
`logs`. An entry delivered again (a worker died between commit and acknowledgement, or another
worker holds it too) therefore adds nothing: a concurrent transaction storing the same entry
makes this one wait for its outcome. Unpacking in PostgreSQL's C code instead of decoding and
re-encoding every log in Python takes the worker's own CPU per log from ~5 µs to ~0.2 µs, and a
ledger row per entry instead of a unique index entry per log takes ~30 % off PostgreSQL's cost
per log (docs/benchmarks.md). The ledger keeps entries only while they can still be delivered
(`forget`).

A record of the wrong shape (a wrong level, a `log_data` that is not an object, a time that is
not an integer) leaves `created_at` NULL or fails its cast, so PostgreSQL refuses the batch.
"""

import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import asyncpg  # type: ignore[import-untyped]

from fleetlog.errors import RejectedBatch, StoreUnavailable
from fleetlog.metrics import STORE_COMMIT_ROWS, STORE_COMMIT_SECONDS
from fleetlog.records import LEVELS
from fleetlog.store import partitions

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0
STAGING = "logs_staging"
CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} "
    "(shard integer, entry_ms bigint, entry_seq bigint, digest bigint, payload jsonb) "
    "ON COMMIT DELETE ROWS"
)
ENTRY = "shard, entry_ms, entry_seq, digest"
# Migration 0003 filled the ledger with the entries stored before it, digest unknown (-1).
STORED_BEFORE_LEDGER = """
    EXISTS (SELECT FROM stored_entries o WHERE o.digest = -1
            AND (o.shard, o.entry_ms, o.entry_seq) = (s.shard, s.entry_ms, s.entry_seq))
"""
LEVEL_LIST = ", ".join(f"'{level}'" for level in sorted(LEVELS))
# Epoch microseconds to timestamptz, exact over years 1..9999: whole seconds and the remaining
# microseconds are added apart, as an interval times a float8 is exact only below 2**53.
EPOCH_US = (
    "'epoch'::timestamptz + ({us} / 1000000) * interval '1 second'"
    " + ({us} % 1000000) * interval '1 microsecond'"
)
COLUMNS = "device_id, log_level, message, log_data, created_at, received_at, ingest_key"
MINUTE = "date_bin('1 minute', created_at, timestamptz '1970-01-01 00:00:00+00')"
# The rollups (migration 0005) of the `new` rows: only rows new to the ledger count, so an
# entry delivered again adds nothing to them either. The main query reads only `new`, so
# PostgreSQL runs these once it is done, at the end of the statement, in an order fixed by the
# statement: the row locks they take are held only until the commit that follows. Each upserts
# its rows in the order of its key, so workers committing at once wait, never deadlock. A
# device's `last_seen` moves only by over a second: rewriting the row of every device of every
# batch cost ~8 % of the statement.
ROLLUPS = f"""
counted AS (
    INSERT INTO log_counts (device_id, bucket, log_level, count)
    SELECT device_id, {MINUTE}, log_level, count(*) FROM new GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (device_id, bucket, log_level)
    DO UPDATE SET count = log_counts.count + excluded.count
),
counted_levels AS (
    INSERT INTO level_counts (bucket, log_level, count)
    SELECT {MINUTE}, log_level, count(*) FROM new GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bucket, log_level) DO UPDATE SET count = level_counts.count + excluded.count
),
seen AS (
    INSERT INTO devices (device_id, first_seen, last_seen)
    SELECT device_id, min(received_at), max(received_at) FROM new GROUP BY 1 ORDER BY 1
    ON CONFLICT (device_id) DO UPDATE SET
        first_seen = least(devices.first_seen, excluded.first_seen),
        last_seen = greatest(devices.last_seen, excluded.last_seen)
    WHERE excluded.last_seen > devices.last_seen + interval '1 second'
       OR excluded.first_seen < devices.first_seen
)"""
# The records of the staged entries new to the ledger as rows of `logs`; how many rows, their
# devices and their event days.
EXPAND_STAGED = f"""
WITH fresh AS (
    INSERT INTO stored_entries ({ENTRY})
    SELECT {ENTRY} FROM {STAGING} s WHERE NOT {STORED_BEFORE_LEDGER}
    ON CONFLICT DO NOTHING
    RETURNING {ENTRY}
),
new AS (
    INSERT INTO logs ({COLUMNS})
    SELECT r->>0, r->>1, r->>2, r->3,
           CASE WHEN well_formed THEN {EPOCH_US.format(us="ts_us")} END,
           CASE WHEN well_formed THEN {EPOCH_US.format(us="received_us")} END,
           s.shard || '-' || s.entry_ms || '-' || s.entry_seq || '-' || (e.pos - 1)
    FROM {STAGING} s
    CROSS JOIN LATERAL jsonb_array_elements(s.payload->1) WITH ORDINALITY AS e(r, pos)
    CROSS JOIN LATERAL (
        SELECT (r->>4)::bigint AS ts_us, (r->>5)::bigint AS received_us,
               jsonb_array_length(r) = 6
               AND jsonb_typeof(r->0) = 'string'
               AND r->>1 IN ({LEVEL_LIST})
               AND jsonb_typeof(r->2) = 'string'
               AND jsonb_typeof(r->3) = 'object'
               AND jsonb_typeof(r->4) = 'number'
               AND jsonb_typeof(r->5) = 'number' AS well_formed
    ) AS f
    WHERE (s.shard, s.entry_ms, s.entry_seq, s.digest) IN (SELECT {ENTRY} FROM fresh)
    RETURNING device_id, log_level, created_at, received_at
),
{ROLLUPS}
SELECT count(*), coalesce(array_agg(DISTINCT device_id), '{{}}'),
       coalesce(array_agg(DISTINCT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')), '{{}}')
FROM new
"""
# Whether the ledger holds the entry ($1 shard, $2 ms, $3 seq, $4 digest): its logs are stored.
IN_LEDGER = """
SELECT EXISTS (SELECT FROM stored_entries
               WHERE (shard, entry_ms, entry_seq) = ($1, $2, $3) AND digest IN ($4, -1))
"""
# At most FORGET_ROWS a call, so that a long history (the ledger filled by migration 0003)
# goes in bounded steps.
FORGET_ROWS = 100_000
FORGET = f"""
DELETE FROM stored_entries WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM stored_entries
    WHERE shard = $1 AND (entry_ms, entry_seq) < ($2, $3) AND stored_at < now() - $4::interval
    LIMIT {FORGET_ROWS}
))
"""
# Errors caused by the rows themselves; anything else means the store is not usable now.
ROW_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)
# A statement cancelled by its timeout can leave the connection unable to reset when it goes
# back to the pool (InternalClientError); the pool closes it, and the store counts as down.
DOWN_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


class Packed(NamedTuple):
    """One stream entry as COPY sends it: its shard, id and payload digest, and its payload.

    The logs' ingest keys (the message ids their client got) are
    `<shard>-<entry_ms>-<entry_seq>-<position>`.
    """

    shard: int
    entry_ms: int
    entry_seq: int
    digest: int
    payload: bytes

    @classmethod
    def of(cls, shard: int, entry_id: str, payload: bytes) -> "Packed":
        ms, seq = entry_id.split("-")
        return cls(shard, int(ms), int(seq), zlib.crc32(payload), payload)


@dataclass(frozen=True, slots=True)
class Written:
    """What a batch added: how many rows were new, and the devices and event days (UTC,
    YYYY-MM-DD) of those rows."""

    rows: int
    devices: set[str]
    days: set[str] = field(default_factory=set)


def to_jsonb(data: bytes) -> bytes:
    """jsonb in binary format is a version byte, then the JSON text: the payload as it is."""
    return b"\x01" + data


def from_jsonb(data: bytes) -> bytes:
    return data[1:]


async def prepare_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=to_jsonb, decoder=from_jsonb, format="binary"
    )
    await conn.execute(CREATE_STAGING)


class BulkWriter:
    """Writes batches to PostgreSQL's `logs` and keeps its day partitions.

    Args:
        dsn: a `postgresql://` URL.
        max_connections: most connections at once (one per batch in flight).
        command_timeout: seconds a statement may take before it is cancelled and the store
            counts as unavailable.
    """

    def __init__(
        self, dsn: str, *, max_connections: int, command_timeout: float = COMMAND_TIMEOUT_S
    ) -> None:
        self.dsn = dsn
        self.max_connections = max_connections
        self.command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        # min_size=0: a worker starts (and waits) while PostgreSQL is still down.
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=0,
            max_size=self.max_connections,
            init=prepare_connection,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=self.command_timeout,
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("BulkWriter.open() was not called")
        return self._pool

    async def write(self, batch: Sequence[Packed]) -> Written:
        """Store the entries' logs in one transaction; returns what was new."""
        started = time.perf_counter()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.copy_records_to_table(STAGING, records=batch, columns=Packed._fields)
                rows, devices, days = await conn.fetchrow(EXPAND_STAGED)
        except ROW_ERRORS as exc:
            raise RejectedBatch(f"PostgreSQL refused the batch: {exc}") from exc
        except DOWN_ERRORS as exc:
            log.warning("COPY of %d entries failed: %r", len(batch), exc)
            raise StoreUnavailable("PostgreSQL cannot commit", retry_after=RETRY_AFTER_S) from exc
        STORE_COMMIT_SECONDS.observe(time.perf_counter() - started)
        STORE_COMMIT_ROWS.observe(rows)
        return Written(rows=rows, devices=set(devices), days=set(days))

    async def holds(self, entry: Packed) -> bool:
        """Whether the entry's logs were stored (the ledger still has it)."""
        try:
            async with self.pool.acquire() as conn:
                return bool(await conn.fetchval(IN_LEDGER, *entry[:4]))
        except DOWN_ERRORS as exc:
            raise StoreUnavailable(
                "PostgreSQL cannot read the ledger", retry_after=RETRY_AFTER_S
            ) from exc

    async def forget(self, shard: int, below: tuple[int, int], *, stored_before: timedelta) -> int:
        """Drop the ledger rows of `shard`'s entries with ids below `below` (ms, seq), entries
        gone from the stream, once stored longer ago than `stored_before` by PostgreSQL's
        clock (a worker may still be inside a commit of an entry another one stored).
        Returns how many (at most FORGET_ROWS)."""
        try:
            async with self.pool.acquire() as conn:
                status = await conn.execute(FORGET, shard, *below, stored_before)
        except DOWN_ERRORS as exc:
            raise StoreUnavailable(
                "PostgreSQL cannot prune the ledger", retry_after=RETRY_AFTER_S
            ) from exc
        return int(status.split()[-1])

    async def maintain(
        self, *, ahead: int, today: datetime | None = None
    ) -> partitions.Maintenance:
        """Create the coming days' partitions."""
        day = (today or datetime.now(UTC)).date()
        try:
            async with self.pool.acquire() as conn:
                return await partitions.maintain(conn, today=day, ahead=ahead)
        except DOWN_ERRORS as exc:
            raise StoreUnavailable(
                "PostgreSQL cannot maintain partitions", retry_after=RETRY_AFTER_S
            ) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
