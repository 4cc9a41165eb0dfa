"""SqliteWriter: the embedded store's one writer, a group of logs per durable commit.

A whole group goes to SQLite as one JSON parameter of one `INSERT … SELECT FROM json_each(?)`
statement, on a connection owned by one thread (a group past 64 MiB goes as several
statements). In the same transaction, one statement per rollup table (migration 0005) adds
the group's counts, read back from the rows just inserted. Each statement does a whole
group's work without taking Python's GIL back row by row: under load a row-by-row
`executemany` waited for the GIL at every row and took three times as long.
"""

import asyncio
import fcntl
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from fleetlog.errors import StoreUnavailable
from fleetlog.idempotency.answers import Mark
from fleetlog.metrics import (
    SQLITE_WRITE_HELD_SECONDS,
    SQLITE_WRITE_WAIT_SECONDS,
    STORE_COMMIT_ROWS,
    STORE_COMMIT_SECONDS,
)
from fleetlog.records import LogRecord
from fleetlog.store.engine import SQLITE_MMAP_BYTES

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0
BUSY_TIMEOUT_MS = 30_000
CACHE_KIB = 64 * 1024
# The writer thread takes Python's GIL back after every statement of a commit, while it holds the
# write lock that every server process waits for. At CPython's default switch interval (5 ms)
# it could wait that long, each time, behind a request being parsed on the event loop, and
# every process with it. At 0.1 ms it asks for the GIL sooner (a C call running on the event
# loop, such as validating a batch, still runs to its end first).
GIL_SWITCH_INTERVAL_S = 0.0001
# Well under SQLite's 1 GB limit on a statement's size, and on the memory one statement takes.
MAX_STATEMENT_BYTES = 64 * 1024 * 1024
INSERT = """
INSERT INTO logs (device_id, log_level, message, log_data, created_at, received_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]')
FROM json_each(?)
"""
# The rollups of the logs with ids past `?`: the group just inserted. A time's minute starts
# with its first 17 characters, as the SQLite dialect writes it ('YYYY-MM-DD HH:MM:SS.ffffff').
# NOT INDEXED keeps SQLite on the rowid range: for GROUP BY device_id it would rather walk the
# whole device index in order (~10 µs a log at 100k logs, and growing with the table).
ROLLUPS = (
    """
    INSERT INTO log_counts (device_id, bucket, log_level, count)
    SELECT device_id, substr(created_at, 1, 17) || '00.000000', log_level, count(*)
    FROM logs NOT INDEXED WHERE id > ? GROUP BY 1, 2, 3
    ON CONFLICT (device_id, bucket, log_level) DO UPDATE SET count = count + excluded.count
    """,
    """
    INSERT INTO level_counts (bucket, log_level, count)
    SELECT substr(created_at, 1, 17) || '00.000000', log_level, count(*)
    FROM logs NOT INDEXED WHERE id > ? GROUP BY 1, 2
    ON CONFLICT (bucket, log_level) DO UPDATE SET count = count + excluded.count
    """,
    """
    INSERT INTO devices (device_id, first_seen, last_seen)
    SELECT device_id, min(received_at), max(received_at)
    FROM logs NOT INDEXED WHERE id > ? GROUP BY 1
    ON CONFLICT (device_id) DO UPDATE SET
        first_seen = min(first_seen, excluded.first_seen),
        last_seen = max(last_seen, excluded.last_seen)
    """,
)

# A keyed request's Idempotency-Key marked queued in its records' transaction: taken from
# its claim, or made anew if the claim was forgotten, never from another request's claim.
MARK = """
INSERT INTO idempotency_keys
    (key, token, expires_at, fingerprint, received_us, first_id, id_count)
VALUES (?, NULL, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    token = NULL, expires_at = excluded.expires_at, fingerprint = excluded.fingerprint,
    received_us = excluded.received_us, first_id = excluded.first_id, id_count = excluded.id_count
WHERE idempotency_keys.token = ?
"""

SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


# A time's text on SQLite: its second, then its microseconds (`as_rows` reuses the second's).
SECOND_TEXT = "%04d-%02d-%02d %02d:%02d:%02d"
TIME_TEXT = SECOND_TEXT + ".%06d"


def sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy's DateTime writes it on SQLite (and reads and compares it back):
    its fields, without the zone. The same text as its bind processor, for 60 % of its cost."""
    return TIME_TEXT % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def turns_path(path: Path) -> Path:
    """The file every process writing to the database at `path` takes turns on (flock)."""
    return path.with_name(f"{path.name}.writer-lock")


@dataclass(frozen=True, slots=True)
class KeyMark:
    """An Idempotency-Key to mark in a group's commit: its request's rows in the group."""

    mark: Mark
    offset: int
    count: int
    expires_at: float


def as_rows(records: Sequence[LogRecord]) -> list[list[Any]]:
    """The records as the rows INSERT reads. `log_data` goes as its JSON text in a JSON string,
    which `json_extract` hands over unescaped: as an object, SQLite would parse it and write it
    out again under the write lock (0.4 µs a log more there, for 0.15 µs less out here)."""
    rows: list[list[Any]] = []
    # The logs of one request share one receive time object: format it once.
    received_at, received = None, ""
    # A shipped log carries an event time of its own, and a request's mostly fall in a few
    # seconds: each second's text is made once for the times in a row that fall in it.
    second: tuple[int, ...] = ()
    second_text = ""
    for record in records:
        if record.received_at is not received_at:
            received_at, received = record.received_at, sqlite_time(record.received_at)
        ts = record.ts
        if ts is received_at:
            created = received
        else:
            fields = (ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second)
            if fields != second:
                second, second_text = fields, SECOND_TEXT % fields
            created = "%s.%06d" % (second_text, ts.microsecond)  # noqa: UP031 (the fastest form)
        log_data = orjson.dumps(record.log_data).decode()
        rows.append([record.device_id, record.level, record.message, log_data, created, received])
    return rows


def payloads(rows: list[list[Any]], limit: int) -> list[bytes]:
    """The rows as JSON arrays of at most `limit` bytes each (a lone larger row goes alone)."""
    payload = orjson.dumps(rows)
    if len(payload) <= limit or len(rows) == 1:
        return [payload]
    middle = len(rows) // 2
    return payloads(rows[:middle], limit) + payloads(rows[middle:], limit)


def mark_row(marked: KeyMark, *, first: int) -> tuple[object, ...]:
    mark = marked.mark
    return (
        mark.name,
        marked.expires_at,
        mark.fingerprint,
        mark.received_us,
        first + marked.offset,
        marked.count,
        mark.token,
    )


class SqliteWriter:
    def __init__(
        self, path: Path, *, synchronous: str, max_statement_bytes: int = MAX_STATEMENT_BYTES
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.max_statement_bytes = max_statement_bytes
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetlog-sqlite")
        self._db: sqlite3.Connection | None = None
        self._turns = -1
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))

    async def insert_batch(
        self, records: Sequence[LogRecord], *, marks: Sequence[KeyMark] = ()
    ) -> list[int]:
        """Commit all records durably in one transaction, with the keys of `marks` marked
        queued; the records' ids, in the same order."""
        chunks = payloads(as_rows(records), self.max_statement_bytes)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            last = await loop.run_in_executor(
                self._thread, self._insert, chunks, len(records), marks
            )
        except sqlite3.Error as exc:
            log.warning("insert of %d logs failed: %s", len(records), exc)
            unavailable = StoreUnavailable("the log store cannot commit", retry_after=RETRY_AFTER_S)
            raise unavailable from exc
        STORE_COMMIT_SECONDS.observe(time.perf_counter() - started)
        STORE_COMMIT_ROWS.observe(len(records))
        return list(range(last - len(records) + 1, last + 1))

    def _insert(self, chunks: list[bytes], rows: int, marks: Sequence[KeyMark]) -> int:
        db = self._connection()
        # Server processes take turns through a file lock: a waiter wakes the moment the lock
        # is free, where SQLite's own busy handler would sleep up to 100 ms between tries.
        asked = time.perf_counter()
        fcntl.flock(self._turns, fcntl.LOCK_EX)
        taken = time.perf_counter()
        SQLITE_WRITE_WAIT_SECONDS.observe(taken - asked)
        try:
            return self._commit(db, chunks, rows, marks)
        finally:
            fcntl.flock(self._turns, fcntl.LOCK_UN)
            SQLITE_WRITE_HELD_SECONDS.observe(time.perf_counter() - taken)

    @staticmethod
    def _commit(
        db: sqlite3.Connection, chunks: list[bytes], rows: int, marks: Sequence[KeyMark]
    ) -> int:
        """The group's logs, their rollups and keys in one transaction; the last log's id."""
        db.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks:
                db.execute(INSERT, (chunk.decode(),))
            last: int = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            # The transaction holds SQLite's only write lock, so its rowids are consecutive.
            for statement in ROLLUPS:
                db.execute(statement, (last - rows,))
            if marks:
                db.executemany(MARK, [mark_row(marked, first=last - rows + 1) for marked in marks])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return last

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Every commit touches pages all over the indexes (devices, levels, words, counts):
            # keep them cached across commits rather than read again each time.
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            db.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            # What SQLite says, not what was asked: it ignores a PRAGMA it cannot apply.
            log.info(
                "SQLite writer on %s: journal_mode=%s synchronous=%s",
                self.path,
                db.execute("PRAGMA journal_mode").fetchone()[0],
                SYNCHRONOUS_NAMES[db.execute("PRAGMA synchronous").fetchone()[0]],
            )
            self._turns = os.open(turns_path(self.path), os.O_RDWR | os.O_CREAT, 0o600)
            self._db = db
        return self._db

    async def close(self) -> None:
        def close_connection() -> None:
            if self._db is not None:
                self._db.close()
                os.close(self._turns)
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._thread, close_connection)
        self._thread.shutdown()
