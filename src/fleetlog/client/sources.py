"""What `fleetlog import` reads: export files (NDJSON, gzip'ed or not) and archive directories.

An archive directory (written by retention before logs leave the store) holds `manifest.json`,
`{"version": 1, "files": [{"name", "day", "rows", "bytes", "sha256"}, …]}`, and its gzip
NDJSON files; each file's SHA-256 is checked against the manifest before it is imported.
A file's SHA-256 is also its identity: the Idempotency-Keys of its chunks derive from it.
"""

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"
HASH_BLOCK = 1024 * 1024


class SourceError(Exception):
    """A file or archive that cannot be imported as it is, in one line."""


@dataclass(frozen=True, slots=True)
class Source:
    """One file to import, with the SHA-256 its manifest gives it (None: to be computed)."""

    path: Path
    expected_sha256: str | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def identity(self) -> str:
        """The file's SHA-256, checked against its manifest's when it has one."""
        digest = file_sha256(self.path)
        if self.expected_sha256 is not None and digest != self.expected_sha256.lower():
            raise SourceError(
                f"{self.path}: its SHA-256 is {digest}, not the manifest's "
                f"{self.expected_sha256}: the file is damaged or not the one archived"
            )
        return digest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def sources_of(paths: list[Path]) -> Iterator[Source]:
    """The files of `paths`, in order: an archive directory's in its manifest's order."""
    for path in paths:
        if path.is_dir():
            yield from archive(path)
        elif path.is_file():
            yield Source(path)
        else:
            raise SourceError(f"{path}: no such file or directory")


def archive(directory: Path) -> list[Source]:
    try:
        manifest: Any = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise SourceError(f"{directory}: a directory without {MANIFEST} is no archive") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{directory / MANIFEST}: not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        raise SourceError(f"{directory / MANIFEST}: not a version {MANIFEST_VERSION} manifest")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise SourceError(f"{directory / MANIFEST}: `files` must be a list")
    return [archived(directory, entry) for entry in files]


def archived(directory: Path, entry: Any) -> Source:
    name = entry.get("name") if isinstance(entry, dict) else None
    sha256 = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not isinstance(sha256, str):
        raise SourceError(f"{directory / MANIFEST}: each file needs a `name` and a `sha256`")
    if Path(name).name != name or name in ("", ".", ".."):
        raise SourceError(f"{directory / MANIFEST}: {name!r} is not a file name of the archive")
    path = directory / name
    if not path.is_file():
        raise SourceError(f"{path}: listed in the manifest, but missing")
    return Source(path, sha256)


def open_lines(raw: IO[bytes]) -> Iterable[bytes]:
    """The file's lines, inflated when it is gzip (by its first bytes, whatever its name)."""
    start = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode="rb") if start == GZIP_MAGIC else raw
