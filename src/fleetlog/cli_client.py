"""`fleetlog query` and `fleetlog tail`: search and follow a fleetlog server from a terminal.

On a terminal logs are aligned, colored lines; piped, or with --json, they are NDJSON, each log
exactly as the server answered it. Exit codes: 0 done (also when the reader of a pipe stops
reading), 1 the server refused or could not be reached (one line on stderr, never a
traceback), 2 a bad option, 130 interrupted by Ctrl-C.
"""

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from fleetlog.client.api import DEFAULT_URL, ClientError, LogApi, Order, Search
from fleetlog.client.render import LogPrinter, NdjsonPrinter, TerminalPrinter
from fleetlog.client.sse import SseEvent
from fleetlog.client.tail import Tail
from fleetlog.errors import InvalidParameter
from fleetlog.search.times import parse_time

stderr = Console(stderr=True, highlight=False, soft_wrap=True)

Query = Annotated[
    str,
    typer.Argument(
        metavar="QUERY", help="What to find, e.g. 'level>=error device:cam-*' (all logs if empty)"
    ),
]
Url = Annotated[
    str, typer.Option(envvar="FLEETLOG_URL", help="The fleetlog server", show_envvar=True)
]
ApiKey = Annotated[
    str | None,
    typer.Option(envvar="FLEETLOG_API_KEY", help="A read key or access token", show_envvar=True),
]
AsJson = Annotated[bool, typer.Option("--json", help="NDJSON even on a terminal")]
Utc = Annotated[bool, typer.Option("--utc", help="Times in UTC instead of the local zone")]


def query(
    q: Query = "",
    since: Annotated[
        str | None, typer.Option(help="From: RFC 3339, epoch s or ms, or a span ago (15m, 2h, 7d)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to (excluded), written as --since")] = None,
    limit: Annotated[int, typer.Option(help="Logs to print at most; 0 for all", min=0)] = 100,
    order: Annotated[Order, typer.Option(help="desc: newest first; asc: oldest first")] = "desc",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
    utc: Utc = False,
) -> None:
    """Search the logs, page after page as the server answers them."""
    now = datetime.now(UTC)
    # Spans such as 1h are fixed once, so every page of the search covers the same times.
    search = Search(
        q=q,
        since=absolute(since, name="since", now=now),
        until=absolute(until, name="until", now=now),
        order=order,
        limit=limit,
    )
    printer = choose_printer(as_json=as_json, utc=utc)
    with talking_to(url, api_key) as api:
        for page in api.pages(search):
            printer.print_logs(page)


def tail(
    q: Query = "",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
    utc: Utc = False,
) -> None:
    """Follow new logs as they arrive, until Ctrl-C; a lost connection is resumed."""
    printer = choose_printer(as_json=as_json, utc=utc)
    with talking_to(url, api_key) as api:
        for event in Tail(api, q, notice=notice).events():
            show_event(event, printer)


def absolute(value: str | None, *, name: str, now: datetime) -> str | None:
    """`value` as an RFC 3339 time in UTC; a bad one is refused before any request."""
    if value is None:
        return None
    try:
        moment = parse_time(value, name=name, now=now)
    except InvalidParameter as exc:
        raise typer.BadParameter(exc.message, param_hint=f"--{name}") from None
    return moment.isoformat().replace("+00:00", "Z")


def choose_printer(*, as_json: bool, utc: bool) -> LogPrinter:
    if as_json or not sys.stdout.isatty():
        return NdjsonPrinter(sys.stdout)
    return TerminalPrinter(Console(highlight=False), utc=utc)


def show_event(event: SseEvent, printer: LogPrinter) -> None:
    """A log is printed; a count of dropped logs is told on stderr; other events are skipped."""
    if event.event not in {"log", "dropped"}:
        return
    try:
        payload = json.loads(event.data)
    except ValueError:
        notice(f"skipped a {event.event} event that is not JSON")
        return
    if event.event == "log":
        printer.print_logs([payload])
    else:
        dropped = payload.get("dropped") if isinstance(payload, dict) else None
        notice(f"the server dropped {dropped} logs for this tail: it was reading too slowly")


def notice(message: str) -> None:
    stderr.print(Text.assemble(("fleetlog:", "yellow"), " ", message))


@contextmanager
def talking_to(url: str, api_key: str | None) -> Iterator[LogApi]:
    """The server's API; its errors and a closed pipe end the command as documented above."""
    try:
        with LogApi(url, api_key=api_key) as api:
            yield api
    except ClientError as exc:
        hint = (
            " (no API key given: set FLEETLOG_API_KEY)" if exc.status == 401 and not api_key else ""
        )
        # Text, not markup: the server's words may hold brackets.
        stderr.print(Text.assemble(("error:", "red"), " ", exc.message, hint))
        raise typer.Exit(1) from None
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(0) from None


def silence_stdout() -> None:
    """The reader went away: what is still buffered goes nowhere, not into a second error."""
    with suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
