"""Export: every log a search finds, oldest first, as NDJSON or CSV, one keyset page at a time.

Pages of PAGE_ROWS logs are read in (event time, id) order, each after the last log of the one
before, so an export holds one page in memory whatever its size, and each page's read is bound
by the query timeout on its own. Logs that arrive meanwhile behind the last page are left out;
those ahead of it, within `until`, are taken.

An NDJSON line is `{"id", "device_id", "log_level", "message", "log_data", "created_at",
"received_at"}` with times in RFC 3339, UTC, to the microsecond; `fleetlog import` reads it
back. CSV (RFC 4180) has a header row and the same columns, `log_data` as compact JSON.
"""

import csv
import io
import zlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Literal

import orjson

from fleetlog.store.logs import LogStore, Position, Selection, StoredLog

ExportFormat = Literal["ndjson", "csv"]
COLUMNS = ("id", "device_id", "log_level", "message", "log_data", "created_at", "received_at")
PAGE_ROWS = 5000
MEDIA_TYPES: dict[ExportFormat, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
}


def rfc3339(moment: datetime) -> str:
    """`2026-11-30T13:00:00.000000Z`: UTC, always with its microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def compact(log_data: str) -> bytes:
    """The stored JSON text without spaces: PostgreSQL's jsonb text has them, SQLite's not."""
    return orjson.dumps(orjson.loads(log_data))


def ndjson_line(log: StoredLog) -> bytes:
    head = orjson.dumps(
        {
            "id": log.id,
            "device_id": log.device_id,
            "log_level": log.log_level,
            "message": log.message,
        }
    )
    times = orjson.dumps(
        {"created_at": rfc3339(log.created_at), "received_at": rfc3339(log.received_at)}
    )
    return b'%b,"log_data":%b,%b\n' % (head[:-1], compact(log.log_data), times[1:])


def csv_rows(rows: Iterable[Iterable[object]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def csv_lines(logs: Iterable[StoredLog]) -> bytes:
    return csv_rows(
        (
            log.id,
            log.device_id,
            log.log_level,
            log.message,
            compact(log.log_data).decode(),
            rfc3339(log.created_at),
            rfc3339(log.received_at),
        )
        for log in logs
    )


class Export:
    """One export: its first page is read when asked, so that a refused search (bad query,
    timeout) is answered as an error before anything of the export is sent."""

    def __init__(
        self,
        store: LogStore,
        selection: Selection,
        *,
        fmt: ExportFormat,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        self.store = store
        self.selection = selection
        self.fmt = fmt
        self.page_rows = page_rows
        self.first: list[StoredLog] | None = None

    async def start(self) -> None:
        self.first = await self.page(None)

    async def page(self, after: Position | None) -> list[StoredLog]:
        found = await self.store.page(self.selection, limit=self.page_rows, after=after)
        return found.logs

    def render(self, logs: list[StoredLog]) -> bytes:
        if self.fmt == "csv":
            return csv_lines(logs)
        return b"".join(ndjson_line(log) for log in logs)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The export's bytes, a page at a time."""
        if self.fmt == "csv":
            yield csv_rows([COLUMNS])
        logs = self.first if self.first is not None else await self.page(None)
        self.first = None
        while logs:
            yield self.render(logs)
            if len(logs) < self.page_rows:
                return
            logs = await self.page(logs[-1].position)


async def gzipped(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks as one gzip file, compressed as they come."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    async for chunk in chunks:
        if compressed := compressor.compress(chunk):
            yield compressed
    yield compressor.flush()
