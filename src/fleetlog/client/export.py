"""`fleetlog export`: a search's logs from `GET /api/export`, streamed into a file.

The bytes go to `FILE.partial` as they arrive, and the file is renamed to FILE once the
server's answer has ended: a `.partial` file left behind (Ctrl-C, a lost connection, a server
that stopped mid-way) says by its name that it holds only the start of the export.
"""

import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# (rows so far, bytes so far)
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class RowCounter:
    """Counts the rows of an export as its bytes arrive: the lines of NDJSON, and of CSV but
    its header (a CSV message holding a newline counts twice: an estimate for the progress).
    A gzip file is inflated for the counting only."""

    csv: bool
    inflater: "zlib._Decompress | None"
    lines: int = 0

    @classmethod
    def of(cls, *, csv: bool, gzip: bool) -> "RowCounter":
        return cls(csv, zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None)

    def feed(self, chunk: bytes) -> None:
        data = chunk if self.inflater is None else self.inflater.decompress(chunk)
        self.lines += data.count(b"\n")

    @property
    def rows(self) -> int:
        return max(0, self.lines - 1) if self.csv else self.lines


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def write_export(
    chunks: Iterable[bytes], path: Path, *, counter: RowCounter, progress: Progress
) -> int:
    """Write the export to `path` through its `.partial` file; the rows written."""
    partial = partial_path(path)
    size = 0
    with partial.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
            counter.feed(chunk)
            progress(counter.rows, size)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return counter.rows
