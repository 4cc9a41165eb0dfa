"""The archive retention writes before any log leaves: gzip NDJSON files by event day.

`<dir>/manifest.json` is `{"version": 1, "files": [{"name", "day", "rows", "bytes",
"sha256"}]}`; each file is `<day>.ndjson.gz`, or `<day>.<n>.ndjson.gz` (n = 2, 3, …) when
that day has files already, never overwritten. Each line is one log: `id`, `device_id`,
`log_level`, `message`, `log_data` (an object), `created_at` and `received_at` (RFC 3339 UTC
with microseconds, `Z`).

A file is written under a temporary name, fsynced, renamed, and the directory fsynced; the
manifest is rewritten the same way, last. So the manifest never names a file that is not
whole; a crash leaves at most `.*.tmp` files, removed by the next pass, or a whole file the
manifest does not name yet, which is never overwritten.
"""

import gzip
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from fleetlog.errors import FleetlogError

MANIFEST = "manifest.json"
VERSION = 1
SUFFIX = ".ndjson.gz"


class ArchiveFailed(FleetlogError):
    """The archive could not be written (a full disk, no permission): nothing was deleted."""

    status = 507
    code = "archive_failed"


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    name: str
    day: str
    rows: int
    bytes: int
    sha256: str


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def archive_line(row: Any) -> bytes:
    """One log as its archive line; `log_data` is the store's JSON text, kept as it is."""
    return orjson.dumps(
        {
            "id": row.id,
            "device_id": row.device_id,
            "log_level": row.log_level,
            "message": row.message,
            "log_data": orjson.Fragment(row.log_data),
            "created_at": rfc3339(row.created_at),
            "received_at": rfc3339(row.received_at),
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


class HashingFile:
    """The file a gzip stream goes to, hashed and counted as it is written."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class DayFile:
    """One file of one day's logs, under a temporary name until the archive publishes it."""

    def __init__(self, directory: Path, day: date) -> None:
        self.day = day
        self.rows = 0
        self.temp = directory / f".{day.isoformat()}.{secrets.token_hex(4)}.tmp"
        self._raw = self.temp.open("xb")
        self._hashed = HashingFile(self._raw)
        self._gzip = gzip.GzipFile(fileobj=self._hashed, mode="wb", mtime=0)

    @property
    def size(self) -> int:
        return self._hashed.size

    @property
    def sha256(self) -> str:
        return self._hashed.sha256.hexdigest()

    def write(self, rows: Iterable[Any]) -> None:
        for row in rows:
            self._gzip.write(archive_line(row))
            self.rows += 1

    def finish(self) -> None:
        """Complete the gzip stream and make it durable."""
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()

    def discard(self) -> None:
        self._raw.close()
        self.temp.unlink(missing_ok=True)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Archive:
    """The archive directory (FLEETLOG_ARCHIVE_DIR). Its methods block: run them in a thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open_day(self, day: date) -> DayFile:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            return DayFile(self.directory, day)
        except OSError as exc:
            raise failed(exc) from exc

    def write(self, file: DayFile, rows: Sequence[Any]) -> None:
        try:
            file.write(rows)
        except OSError as exc:
            raise failed(exc) from exc

    def publish(self, files: list[DayFile]) -> list[ArchivedFile]:
        """Finish, name and list the files in the manifest; on failure none is listed and
        their temporary files are gone."""
        try:
            return self._publish(files)
        except OSError as exc:
            self.discard(files)
            raise failed(exc) from exc

    def _publish(self, files: list[DayFile]) -> list[ArchivedFile]:
        manifest = self.manifest()
        names = {entry["name"] for entry in manifest["files"]}
        published = []
        for file in files:
            file.finish()
            name = self._free_name(file.day, names)
            names.add(name)
            published.append(
                ArchivedFile(
                    name=name,
                    day=file.day.isoformat(),
                    rows=file.rows,
                    bytes=file.size,
                    sha256=file.sha256,
                )
            )
            file.temp.rename(self.directory / name)
        fsync_directory(self.directory)
        manifest["files"] += [asdict(entry) for entry in published]
        self._replace(MANIFEST, json.dumps(manifest, indent=1).encode())
        return published

    def discard(self, files: list[DayFile]) -> None:
        for file in files:
            file.discard()

    def manifest(self) -> dict[str, Any]:
        path = self.directory / MANIFEST
        if not path.exists():
            return {"version": VERSION, "files": []}
        manifest: dict[str, Any] = json.loads(path.read_bytes())
        return manifest

    def remove_leftovers(self) -> None:
        """Temporary files a crashed pass left behind."""
        for leftover in self.directory.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    def _free_name(self, day: date, taken: set[str]) -> str:
        name, n = f"{day.isoformat()}{SUFFIX}", 1
        while name in taken or (self.directory / name).exists():
            n += 1
            name = f"{day.isoformat()}.{n}{SUFFIX}"
        return name

    def _replace(self, name: str, content: bytes) -> None:
        temp = self.directory / f".{name}.{secrets.token_hex(4)}.tmp"
        with temp.open("xb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        temp.rename(self.directory / name)
        fsync_directory(self.directory)


def failed(exc: OSError) -> ArchiveFailed:
    return ArchiveFailed(
        f"the archive could not be written ({exc.strerror or exc}): nothing was deleted"
    )
