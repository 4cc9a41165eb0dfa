"""Syslog lines (RFC 5424, and RFC 3164 as BSD senders write it) mapped onto a `Shipped`.

`<PRI>1 ` starts an RFC 5424 line; any other `<PRI>` line is read as RFC 3164, whose only
sure part is the PRI: its timestamp, hostname and tag are taken when they are there, and the
rest is the message. A line without a PRI is not syslog and is refused.
"""

import re
from datetime import datetime
from typing import Any

from fleetlog.listeners.errors import InvalidLine
from fleetlog.listeners.structured_data import split_structured_data
from fleetlog.records import LogLevel
from fleetlog.shippers.intake import Shipped

PRI = re.compile(rb"<(\d{1,3})>")
SEVERITY_LEVELS = (
    *(LogLevel.CRITICAL,) * 3,
    LogLevel.ERROR,
    LogLevel.WARNING,
    *(LogLevel.INFO,) * 2,
    LogLevel.DEBUG,
)
SEVERITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
FACILITY_NAMES = (
    *("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron"),
    *("authpriv", "ftp", "ntp", "security", "console", "solaris-cron"),
    *(f"local{n}" for n in range(8)),
)
# RFC 5424's header fields: printable US-ASCII, with their longest lengths.
HEADER_FIELDS = (("hostname", 255), ("app_name", 48), ("procid", 128), ("msgid", 32))
PRINTABLE = re.compile(rb"[!-~]+")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)\Z")
BSD_TIME = re.compile(r"([A-Z][a-z]{2}) ([ \d]?\d) (\d\d):(\d\d):(\d\d) ")
ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\S+) ")
MONTHS = {
    name: n for n, name in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}
TAG = re.compile(r"([^\s\[\]:]{1,48})(?:\[([^\s\]]{1,128})\])?:(?: |\Z)")
BOM = "\ufeff"


def parse_syslog(line: bytes, *, source: str, now: datetime) -> Shipped:
    """One syslog line; `source` (the sender's address) names the device when no HOSTNAME
    does, `now` places RFC 3164's year-less timestamps."""
    pri = PRI.match(line)
    if pri is None or int(pri.group(1)) > 191:
        raise InvalidLine("a syslog line starts with <PRI>, PRI from 0 to 191")
    facility, severity = divmod(int(pri.group(1)), 8)
    log_data: dict[str, Any] = {
        "facility": FACILITY_NAMES[facility],
        "severity": SEVERITY_NAMES[severity],
    }
    rest = line[pri.end() :].rstrip(b"\r\n\x00")
    if rest.startswith(b"1 "):
        host, message, ts = rfc5424(rest[2:], log_data)
    else:
        host, message, ts = rfc3164(rest.decode(errors="replace"), log_data, now)
    # rsyslog's %msg% keeps the space after the tag's colon: it forwards "…- -  text".
    message = message.lstrip(" ")
    return Shipped(host or source, SEVERITY_LEVELS[severity], message, log_data, ts)


def rfc5424(rest: bytes, log_data: dict[str, Any]) -> tuple[str | None, str, datetime | None]:
    """HOSTNAME, MSG and TIMESTAMP of an RFC 5424 line after `<PRI>1 `; the other fields go
    into `log_data`."""
    fields = rest.split(b" ", 5)
    if len(fields) < 6:
        raise InvalidLine("an RFC 5424 header has TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD")
    stamp, *names, tail = fields
    header: dict[str, str] = {}
    for (name, longest), value in zip(HEADER_FIELDS, names, strict=True):
        if len(value) > longest or PRINTABLE.fullmatch(value) is None:
            raise InvalidLine(f"the RFC 5424 {name} is not 1..{longest} printable ASCII")
        if value != b"-":
            header[name] = value.decode()
    structured, message = split_structured_data(tail.decode(errors="replace"))
    log_data.update((name, value) for name, value in header.items() if name != "hostname")
    if structured:
        log_data["structured_data"] = structured
    return header.get("hostname"), message.removeprefix(BOM), rfc5424_time(stamp)


def rfc5424_time(stamp: bytes) -> datetime | None:
    if stamp == b"-":
        return None
    text = stamp.decode(errors="replace")
    if RFC3339.match(text) is None:
        raise InvalidLine("the RFC 5424 TIMESTAMP is not an RFC 3339 time with its offset")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidLine("the RFC 5424 TIMESTAMP is not a valid time") from None


def rfc3164(
    text: str, log_data: dict[str, Any], now: datetime
) -> tuple[str | None, str, datetime | None]:
    """HOSTNAME, message and TIMESTAMP of a BSD line after its PRI; TAG[PID] into `log_data`.

    Without a timestamp there is no telling a hostname from the message's first word, so
    both are the message. Some senders leave the hostname out: a first word that reads as a
    tag (`app:` or `app[42]:`) is one.
    """
    ts, host = None, None
    if (bsd := BSD_TIME.match(text)) is not None:
        ts, text = bsd_time(bsd, now), text[bsd.end() :]
    elif (iso := ISO_TIME.match(text)) is not None:
        ts, text = rfc5424_time(iso.group(1).encode()), text[iso.end() :]
    if ts is not None and TAG.match(text) is None:
        host, _, text = text.partition(" ")
    if (tag := TAG.match(text)) is not None:
        log_data["app_name"] = tag.group(1)
        if tag.group(2) is not None:
            log_data["procid"] = tag.group(2)
        text = text[tag.end() :]
    return host or None, text, ts


def bsd_time(match: re.Match[str], now: datetime) -> datetime:
    """An RFC 3164 time, which has no year and no zone: in fleetlog's local time zone, in the
    year (the one before, this one or the next) that puts it nearest to `now`."""
    month = MONTHS.get(match.group(1))
    day, hour, minute, second = (int(match.group(n)) for n in range(2, 6))
    if month is None:
        raise InvalidLine("the RFC 3164 TIMESTAMP has no valid month")
    candidates = []
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            candidates.append(datetime(year, month, day, hour, minute, second).astimezone())
        except ValueError:
            continue
    if not candidates:
        raise InvalidLine("the RFC 3164 TIMESTAMP is not a valid time")
    return min(candidates, key=lambda candidate: abs(candidate - now))
