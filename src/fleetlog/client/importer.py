"""`fleetlog import`: the logs of export files and archives, sent through the normal ingest path.

Lines go in chunks of at most CHUNK_LOGS logs (and about CHUNK_BYTES) to `POST /api/logs/batch`,
each with an Idempotency-Key made of its file's SHA-256 and its place in the file. A re-run, or a
resume after Ctrl-C, sends the same chunks under the same keys: the server answers those it
stored before with their first answer (`Idempotent-Replayed`), storing nothing, and they count
as skipped. A chunk refused for some of its lines (400/422 naming `logs[i]`) is sent again
without them under the same key, which the refusal freed. 429, 503 and 409 are waited out as
Retry-After says; a lost connection is tried again.
"""

import gzip
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from fleetlog.client.api import ClientError, LogApi, describe_error
from fleetlog.client.sources import Source, open_lines

CHUNK_LOGS = 1000
CHUNK_BYTES = 4 * 1024 * 1024
SENT_FIELDS = ("device_id", "log_level", "message", "log_data")
WAITED_STATUSES = frozenset({409, 429, 503})
CONNECTION_TRIES = 8
MAX_PAUSE_S = 10.0
LINE_FIELD = re.compile(r"logs\[(\d+)\]")
OUTSIDE_WINDOW = "event_time_window"


@dataclass(frozen=True, slots=True)
class Rejected:
    path: Path
    line: int
    reason: str
    rule: str = ""


@dataclass(slots=True)
class Tally:
    """What an import did so far; `bytes_read` of its files, for the progress."""

    imported: int = 0
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def outside_window(self) -> int:
        return sum(1 for rejected in self.rejected if rejected.rule == OUTSIDE_WINDOW)


@dataclass(slots=True)
class Chunk:
    index: int
    lines: list[int] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0

    def body(self) -> bytes:
        # mtime 0: the same chunk is the same bytes on every run.
        return gzip.compress(orjson.dumps({"logs": self.logs}), mtime=0)

    def without(self, positions: set[int]) -> "Chunk":
        kept = [position for position in range(len(self.logs)) if position not in positions]
        logs = [self.logs[position] for position in kept]
        return Chunk(self.index, [self.lines[position] for position in kept], logs, self.size)


def log_of(line: bytes) -> dict[str, Any] | str:
    """The log a line of an export (or a batch-format log) sends, or why it cannot be sent."""
    try:
        found = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not JSON"
    if not isinstance(found, dict):
        return "not a JSON object"
    log = {name: found[name] for name in SENT_FIELDS if name in found}
    timestamp = found.get("created_at", found.get("timestamp"))
    if timestamp is not None:
        log["timestamp"] = timestamp
    return log


def chunk_key(identity: str, index: int) -> str:
    return hashlib.sha256(f"fleetlog-import:{identity}:{index}".encode()).hexdigest()


class Importer:
    """Imports sources one after the other into the server of `api`, keeping a Tally."""

    def __init__(
        self,
        api: LogApi,
        *,
        progress: Callable[[Tally], None],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.progress = progress
        self.sleep = sleep
        self.tally = Tally()

    def run(self, source: Source) -> None:
        identity = source.identity()
        read_before = self.tally.bytes_read
        with source.path.open("rb") as raw:
            for chunk in self.chunks(source.path, open_lines(raw)):
                self.send(source.path, chunk, key=chunk_key(identity, chunk.index))
                self.tally.bytes_read = read_before + raw.tell()
                self.progress(self.tally)
        self.tally.bytes_read = read_before + source.size

    def chunks(self, path: Path, lines: Iterable[bytes]) -> Iterator[Chunk]:
        chunk = Chunk(0)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            log = log_of(line)
            if isinstance(log, str):
                self.tally.rejected.append(Rejected(path, number, log))
                continue
            if chunk.logs and (len(chunk.logs) == CHUNK_LOGS or chunk.size >= CHUNK_BYTES):
                yield chunk
                chunk = Chunk(chunk.index + 1)
            chunk.lines.append(number)
            chunk.logs.append(log)
            chunk.size += len(line)
        if chunk.logs:
            yield chunk

    def send(self, path: Path, chunk: Chunk, *, key: str) -> None:
        """Send the chunk until the server took it, or refused each of its lines."""
        while chunk.logs:
            response = self.post(chunk.body(), key=key)
            status = response.status_code
            if response.is_success:
                replayed = response.headers.get("idempotent-replayed") == "true"
                if replayed:
                    self.tally.skipped += len(chunk.logs)
                else:
                    self.tally.imported += len(chunk.logs)
                return
            if status in WAITED_STATUSES:
                self.sleep(retry_after(response))
            elif status in (400, 422):
                chunk = self.refused(path, chunk, response)
            else:
                raise ClientError(f"{describe_error(response)} (HTTP {status})", status=status)

    def post(self, body: bytes, *, key: str) -> httpx.Response:
        """One POST, tried again (with its key, so safely) while the server cannot be reached."""
        pause = 0.5
        for attempt in range(CONNECTION_TRIES):
            try:
                return self.api.send_batch(body, key=key)
            except ClientError as exc:
                if not exc.retryable or attempt == CONNECTION_TRIES - 1:
                    raise
            self.sleep(pause)
            pause = min(2 * pause, MAX_PAUSE_S)
        raise AssertionError("unreachable")

    def refused(self, path: Path, chunk: Chunk, response: httpx.Response) -> Chunk:
        """Record the lines the server named; the chunk without them (empty if none named)."""
        body = safe_json(response)
        if body.get("error") == "idempotency_key_reused":
            # An earlier run stored this chunk without lines it refused then.
            self.tally.skipped += len(chunk.logs)
            return Chunk(chunk.index)
        named: dict[int, Rejected] = {}
        for problem in body.get("detail") or []:
            position = line_position(problem, len(chunk.lines))
            if position is None:
                continue
            rule = str(problem.get("rule", ""))
            reason = f"{problem.get('field')}: {problem.get('message') or rule}"
            named.setdefault(position, Rejected(path, chunk.lines[position], reason, rule))
        if not named:
            reason = describe_error(response)
            self.tally.rejected += [Rejected(path, line, reason) for line in chunk.lines]
            return Chunk(chunk.index)
        self.tally.rejected += named.values()
        return chunk.without(set(named))


def line_position(problem: Any, lines: int) -> int | None:
    """The position in the chunk of the log a detail entry names (`logs[3].log_level`)."""
    if not isinstance(problem, dict):
        return None
    found = LINE_FIELD.match(str(problem.get("field", "")))
    return int(found[1]) if found is not None and int(found[1]) < lines else None


def retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "1")
    return min(float(value), 60.0) if value.isdigit() else 1.0


def safe_json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
