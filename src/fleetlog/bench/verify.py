"""End to end: wait until a run's logs are stored, then prove each is stored exactly once.

The logs are read straight from the store (SQLite file or PostgreSQL database), not through the
API, so neither a cache nor a query limit can hide a missing or doubled row. Rows are counted by
(device, sequence); a log whose request got a 2xx and has no row is lost, every row beyond the
first of a log is a duplicate.
"""

import asyncio
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]

from fleetlog.bench.workload import Workload
from fleetlog.store.partitions import create_partition, partition_days

POLL_INTERVAL_S = 0.05

# device_id, sequence, rows. The sequence is `log_data.seq`, or `log_data.attributes.seq` where
# OTLP's mapping keeps a record's attributes (docs/protocols.md).
Tally = list[tuple[str, int, int]]


class StoredLogs(Protocol):
    """Read access to the rows of a run, by the run's device ids."""

    async def count(self, devices: Sequence[str]) -> int: ...

    async def tally(self, devices: Sequence[str]) -> Tally: ...

    async def prepare_days(self, days: Sequence[date]) -> None: ...

    async def analyze(self) -> None: ...

    async def close(self) -> None: ...


class SqliteLogs:
    """The embedded store's SQLite file, opened read-only beside the running server."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    async def count(self, devices: Sequence[str]) -> int:
        query = f"SELECT count(*) FROM logs WHERE device_id IN ({placeholders(devices)})"
        rows = await asyncio.to_thread(self.fetch, query, devices)
        return int(rows[0][0])

    async def tally(self, devices: Sequence[str]) -> Tally:
        query = (
            "SELECT device_id, CAST(coalesce(json_extract(log_data, '$.seq'),"
            " json_extract(log_data, '$.attributes.seq')) AS INTEGER), count(*)"
            f" FROM logs WHERE device_id IN ({placeholders(devices)}) GROUP BY 1, 2"
        )
        return [
            (str(d), int(s), int(n))
            for d, s, n in await asyncio.to_thread(self.fetch, query, devices)
        ]

    def fetch(self, query: str, devices: Sequence[str]) -> list[tuple[Any, ...]]:
        return self.db.execute(query, tuple(devices)).fetchall()

    async def prepare_days(self, days: Sequence[date]) -> None:
        """Nothing: SQLite's table is one, whatever the days."""

    async def analyze(self) -> None:
        """Nothing: the file is open read-only here; the server keeps its own statistics."""

    async def close(self) -> None:
        self.db.close()


def placeholders(devices: Sequence[str]) -> str:
    return ", ".join("?" * len(devices))


class PostgresLogs:
    """The pipeline's PostgreSQL database (the `logs` table, `log_data` as jsonb)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, dsn: str) -> "PostgresLogs":
        return cls(await asyncpg.connect(dsn))

    async def count(self, devices: Sequence[str]) -> int:
        query = "SELECT count(*) FROM logs WHERE device_id = ANY($1::text[])"
        return int(await self.connection.fetchval(query, list(devices)))

    async def tally(self, devices: Sequence[str]) -> Tally:
        query = (
            "SELECT device_id, coalesce(log_data->>'seq', log_data#>>'{attributes,seq}')::bigint,"
            " count(*)"
            " FROM logs WHERE device_id = ANY($1::text[]) GROUP BY 1, 2"
        )
        rows = await self.connection.fetch(query, list(devices))
        return [(row[0], row[1], row[2]) for row in rows]

    async def prepare_days(self, days: Sequence[date]) -> None:
        """The day partitions a server that ran through `days` would have made, so that logs
        seeded into the past do not all land in the default partition."""
        existing = await partition_days(self.connection)
        for day in days:
            if day not in existing:
                await create_partition(self.connection, day)

    async def analyze(self) -> None:
        """Fresh planner statistics, as autovacuum would gather them some time after a load."""
        await self.connection.execute("ANALYZE logs")

    async def close(self) -> None:
        await self.connection.close()


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What reached the store: `stored_at` is when the last expected row was first seen."""

    stored: int
    lost: int
    duplicated: int
    unacknowledged: int
    stored_at: float


async def wait_for_rows(
    store: StoredLogs,
    devices: Sequence[str],
    expected: int,
    *,
    settle_s: float,
    poll_s: float = POLL_INTERVAL_S,
) -> tuple[int, float]:
    """Poll until `expected` rows are there or `settle_s` pass; (rows, when they last grew)."""
    deadline = time.monotonic() + settle_s
    rows, grew_at = -1, time.monotonic()
    while True:
        count = await store.count(devices)
        now = time.monotonic()
        if count != rows:
            rows, grew_at = count, now
        if rows >= expected or now > deadline:
            return rows, grew_at
        await asyncio.sleep(poll_s)


def audit(workload: Workload, acked: Iterable[range], tally: Tally) -> tuple[int, int, int]:
    """(lost, duplicated, stored without a 2xx) from the acknowledged log ranges and the rows."""
    index = {device: number for number, device in enumerate(workload.device_ids())}
    present: dict[int, int] = {}
    for device, sequence, rows in tally:
        present[workload.log_number(index[device], sequence)] = rows
    duplicated = sum(rows - 1 for rows in present.values())
    lost = 0
    expected: set[int] = set()
    for logs in acked:
        expected.update(logs)
        lost += sum(1 for number in logs if number not in present)
    return lost, duplicated, len(present.keys() - expected)


async def verify(
    store: StoredLogs, workload: Workload, acked: Sequence[range], *, settle_s: float
) -> Delivery:
    """Wait for the acknowledged logs to be stored, then audit every row of the run."""
    devices = workload.device_ids()
    expected = sum(len(logs) for logs in acked)
    _, stored_at = await wait_for_rows(store, devices, expected, settle_s=settle_s)
    tally = await store.tally(devices)
    lost, duplicated, unacknowledged = audit(workload, acked, tally)
    return Delivery(
        stored=len(tally),
        lost=lost,
        duplicated=duplicated,
        unacknowledged=unacknowledged,
        stored_at=stored_at,
    )
