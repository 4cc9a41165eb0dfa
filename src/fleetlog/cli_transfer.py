"""`fleetlog export` and `fleetlog import`: a server's logs to a file, and files back into one.

Like `fleetlog query`, both talk to a server at --url / FLEETLOG_URL with FLEETLOG_API_KEY (a
read key to export, an ingest key to import). Exit codes: 0 done, 1 the server refused or could
not be reached, or (import) some lines were rejected; 2 a bad option; 130 Ctrl-C, which leaves
an export's `.partial` file, and an import that the same command resumes.
"""

import time
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from fleetlog.cli_client import ApiKey, Query, Url, absolute, stderr, talking_to
from fleetlog.client.api import DEFAULT_URL, LogApi
from fleetlog.client.export import RowCounter, partial_path, write_export
from fleetlog.client.importer import Importer, Tally
from fleetlog.client.sources import SourceError, sources_of
from fleetlog.export import ExportFormat

# Shown when the summary lists this many rejected lines; the count covers them all.
SHOWN_REJECTIONS = 20
# The widest count interval whose buckets over the span stay within the server's 10,000.
COUNT_INTERVALS = (("1m", 60), ("1h", 3600), ("1d", 86400))
MAX_BUCKETS = 10_000


def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write")],
    q: Query = "",
    since: Annotated[
        str | None, typer.Option(help="From: RFC 3339, epoch s or ms, or a span ago (15m, 2h, 7d)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to (excluded), written as --since")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="NDJSON lines or CSV")] = "ndjson",
    gzip: Annotated[bool, typer.Option("--gzip", help="Write a gzip file")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Stream the logs a search finds, oldest first, into a file (FILE.partial until done)."""
    now = datetime.now(UTC)
    params = {
        name: value
        for name, value in (
            ("q", q),
            ("since", absolute(since, name="since", now=now)),
            ("until", absolute(until, name="until", now=now)),
        )
        if value
    }
    with talking_to(url, api_key) as api:
        total = expected_rows(api, params, now=now)
        try:
            with api.export(params | {"format": fmt, "gzip": str(gzip).lower()}) as chunks:
                rows = write_with_progress(chunks, output, fmt=fmt, gzip=gzip, total=total)
        except KeyboardInterrupt:
            stderr.print(f"interrupted: {partial_path(output)} holds the start of the export")
            raise typer.Exit(130) from None
    stderr.print(f"{rows:,} logs written to {output}")


def expected_rows(api: LogApi, params: dict[str, str], *, now: datetime) -> int | None:
    """The logs to export, for the ETA, when `--since` bounds them; else unknown."""
    since = params.get("since")
    if since is None:
        return None
    span = now - datetime.fromisoformat(since.replace("Z", "+00:00"))
    for interval, seconds in COUNT_INTERVALS:
        if span.total_seconds() / seconds < MAX_BUCKETS:
            return api.count(params | {"interval": interval})
    return None


def write_with_progress(
    chunks: Iterable[bytes], output: Path, *, fmt: str, gzip: bool, total: int | None
) -> int:
    columns = (
        TextColumn("[bold]exporting"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[size]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("export", total=total, size="", rate="")

        def advance(rows: int, size: int) -> None:
            rate = rows / max(time.monotonic() - started, 1e-3)
            progress.update(
                task, completed=rows, size=f"{size / 1e6:,.1f} MB", rate=f"{rate:,.0f} rows/s"
            )

        counter = RowCounter.of(csv=fmt == "csv", gzip=gzip)
        return write_export(chunks, output, counter=counter, progress=advance)


def import_(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...", help="Export files (NDJSON, gzip or not) or archive directories"
        ),
    ],
    url: Url = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="FLEETLOG_API_KEY", help="An ingest key", show_envvar=True),
    ] = None,
) -> None:
    """Send logs of export files and archives to the server; a re-run adds nothing twice."""
    try:
        sources = list(sources_of(paths))
    except SourceError as exc:
        fail(str(exc))
    total = sum(source.size for source in sources)
    columns = (
        TextColumn("[bold]importing"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
    )
    with (
        talking_to(url, api_key) as api,
        Progress(*columns, console=stderr, transient=True) as progress,
    ):
        task = progress.add_task("import", total=total, counts="")

        def advance(tally: Tally) -> None:
            counts = f"{tally.imported:,} imported, {tally.skipped:,} skipped"
            progress.update(task, completed=tally.bytes_read, counts=counts)

        importer = Importer(api, progress=advance)
        try:
            for source in sources:
                importer.run(source)
        except SourceError as exc:
            summarize(importer.tally)
            fail(str(exc))
        except (OSError, EOFError, zlib.error) as exc:
            summarize(importer.tally)
            fail(f"cannot read {source.path}: {exc}")
        except KeyboardInterrupt:
            summarize(importer.tally)
            stderr.print("interrupted: run the same command again to import the rest")
            raise typer.Exit(130) from None
    summarize(importer.tally)
    if importer.tally.rejected:
        raise typer.Exit(1)


def summarize(tally: Tally) -> None:
    stderr.print(
        f"{tally.imported:,} imported, {tally.skipped:,} skipped (imported before), "
        f"{len(tally.rejected):,} rejected"
    )
    for rejected in tally.rejected[:SHOWN_REJECTIONS]:
        stderr.print(Text(f"  {rejected.path}:{rejected.line}: {rejected.reason}"))
    if len(tally.rejected) > SHOWN_REJECTIONS:
        stderr.print(f"  … and {len(tally.rejected) - SHOWN_REJECTIONS:,} more")
    if tally.outside_window:
        stderr.print(
            Text.assemble(
                ("note:", "yellow"),
                f" {tally.outside_window:,} logs are older than the server accepts: raise "
                "FLEETLOG_MAX_EVENT_AGE (and FLEETLOG_RETENTION_DAYS, which bounds it) on the "
                "server to import them (docs/lifecycle.md, Old logs)",
            )
        )


def fail(message: str) -> None:
    stderr.print(Text.assemble(("error:", "red"), " ", message))
    raise typer.Exit(1)
