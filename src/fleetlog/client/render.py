"""How logs look on the way out: NDJSON for programs, aligned colored lines for people."""

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.text import Text

from fleetlog.client.api import Log

LEVELS = {
    "DEBUG": ("DEBUG", "blue"),
    "INFO": ("INFO", "green"),
    "WARNING": ("WARN", "yellow"),
    "ERROR": ("ERROR", "bold red"),
    "CRITICAL": ("CRIT", "bold white on red"),
}
LEVEL_WIDTH = 5
# Device ids longer than this are not padded to: one odd id must not push every message right.
DEVICE_WIDTH_MAX = 24
# Control characters (ESC among them) would drive the terminal; they are shown escaped instead.
ESCAPED = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
ESCAPED_IN_MESSAGE = {code: text for code, text in ESCAPED.items() if chr(code) not in "\n\t"}


class LogPrinter(Protocol):
    def print_logs(self, logs: Sequence[Log]) -> None: ...


class NdjsonPrinter:
    """Each log exactly as the server gave it, one JSON object per line, flushed per batch."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def print_logs(self, logs: Sequence[Log]) -> None:
        self.out.writelines(
            json.dumps(log, ensure_ascii=False, separators=(",", ":")) + "\n" for log in logs
        )
        self.out.flush()


class TerminalPrinter:
    """`time LEVEL device message key=value…`, columns aligned as wide as the ids seen so far."""

    def __init__(self, console: Console, *, utc: bool = False) -> None:
        self.console = console
        self.utc = utc
        self.device_width = 0

    def print_logs(self, logs: Sequence[Log]) -> None:
        widths = (len(str(log.get("device_id", ""))) for log in logs)
        self.device_width = min(max(self.device_width, *widths, 0), DEVICE_WIDTH_MAX)
        for log in logs:
            self.console.print(self.line(log), soft_wrap=True)

    def line(self, log: Log) -> Text:
        label, style = LEVELS.get(str(log.get("log_level")).upper(), (None, "default"))
        level = label or str(log.get("log_level"))[:LEVEL_WIDTH]
        device = escaped(str(log.get("device_id", "")))
        line = Text.assemble(
            (self.when(log.get("created_at")), "dim"),
            " ",
            (f"{level:<{LEVEL_WIDTH}}", style),
            " ",
            (f"{device:<{self.device_width}}", "cyan"),
            " ",
            str(log.get("message", "")).translate(ESCAPED_IN_MESSAGE),
        )
        data = log.get("log_data")
        if isinstance(data, Mapping) and data:
            line.append("  " + " ".join(pairs(data)), style="dim")
        return line

    def when(self, value: object) -> str:
        """The event time to the millisecond, in the local zone (or UTC, with a Z)."""
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return escaped(str(value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(UTC if self.utc else None)
        return local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + ("Z" if self.utc else "")


def pairs(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """`key=value` for each leaf of `log_data`, nested keys dotted as the query language has it."""
    for key, value in data.items():
        name = f"{prefix}{escaped(str(key))}"
        if isinstance(value, Mapping) and value:
            yield from pairs(value, f"{name}.")
        else:
            yield f"{name}={shown(value)}"


def shown(value: object) -> str:
    """A bare string when it reads unambiguously, else the value's JSON."""
    if isinstance(value, str) and value and not any(c.isspace() or c in '"=' for c in value):
        return escaped(value)
    return escaped(json.dumps(value, ensure_ascii=False))


def escaped(text: str) -> str:
    return text.translate(ESCAPED)
