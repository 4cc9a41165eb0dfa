"""Loki push (docs/protocols.md): a request's streams mapped onto fleetlog's log records.

Each entry is one record: the stream's device label names the device, the line is the message,
the other labels and the entry's structured metadata are `log_data`. Entries are answered one
by one, as Loki answers them: those that break a rule are refused with the reason, and the
others of the same request are stored all the same.

Such a log_data is one flat object of strings, which can break only two of its rules (a NUL,
too many keys): the mapping checks those as it goes, a stream's labels once for its entries,
and the entries' metadata once for the whole body when the body shows it holds no NUL.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleetlog.errors import FleetlogError, Forbidden, MalformedBody, UnsupportedMediaType
from fleetlog.event_time import from_epoch_ns
from fleetlog.ingest import Shipment
from fleetlog.metrics import SHIPPED_RECORDS
from fleetlog.records import LEVEL_ALIASES, MAX_LOG_DATA_KEYS, LogLevel
from fleetlog.shippers.intake import Shipped
from fleetlog.shippers.loki_wire import Stream, decode_json, decode_protobuf

PROTOBUF = "application/x-protobuf"
# Where a level is looked for, in this order: the entry's structured metadata, then its
# stream's labels (Loki's own `detected_level`, Promtail's and Alloy's usual names).
LEVEL_KEYS = ("level", "detected_level", "severity", "lvl")
# A key already taken in log_data is given again with this suffix, as LogQL names a parsed
# field that would shadow a stream label.
CLASH_SUFFIX = "_extracted"
MAX_LISTED = 100
JSON_START = re.compile(rb"\s*\{")


def decode_push(body: bytes | bytearray, *, content_type: str, limit: int) -> list[Stream]:
    """The body's streams, read as its Content-Type says; without one, as the body looks."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return decode_json(body)
    if media_type == PROTOBUF:
        return decode_protobuf(body, limit=limit)
    if media_type:
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not a Loki push; send {PROTOBUF} or JSON",
            detail=[
                {
                    "field": "Content-Type",
                    "rule": "one_of",
                    "allowed": [PROTOBUF, "application/json"],
                }
            ],
        )
    if JSON_START.match(body) is None:
        return decode_protobuf(body, limit=limit)
    # A snappy block of 123 bytes starts with `{` too: protobuf first, as Loki would read it.
    try:
        return decode_protobuf(body, limit=limit)
    except MalformedBody:
        return decode_json(body)


@dataclass(frozen=True, slots=True)
class EntryRefusal:
    stream: int
    entry: int
    rule: str
    message: str
    status: int = 400

    def as_detail(self) -> dict[str, Any]:
        where = {"stream": self.stream, "entry": self.entry}
        return {**where, "rule": self.rule, "message": self.message}


@dataclass(slots=True)
class Mapped:
    """The records of a request, with the (stream, entry) each came from, and the entries
    refused before fleetlog's rules could see them."""

    shipped: list[Shipped] = field(default_factory=list)
    places: list[tuple[int, int]] = field(default_factory=list)
    refusals: list[EntryRefusal] = field(default_factory=list)


def map_streams(streams: Sequence[Stream], *, device_labels: Sequence[str], org_id: str) -> Mapped:
    """Every entry as a `Shipped`, or refused: a stream without a device label has no device."""
    mapped = Mapped()
    for index, stream in enumerate(streams):
        device = next((name for name in device_labels if stream.labels.get(name)), None)
        if device is None:
            reason = f"the stream has none of the device labels {', '.join(device_labels)}"
            mapped.refusals += (
                EntryRefusal(index, entry, "device_label", reason)
                for entry in range(len(stream.entries))
            )
            continue
        labels = {name: value for name, value in stream.labels.items() if name != device}
        stream_level = find_level(labels) or LogLevel.INFO
        nul_free = stream.metadata_nul_free
        shared_clean = no_nul(labels) and "\x00" not in org_id
        for entry, (ns, line, metadata) in enumerate(stream.entries):
            ts = event_time(ns)
            if ts is None:
                reason = f"the timestamp {ns} ns is outside the years 1 to 9999"
                mapped.refusals.append(EntryRefusal(index, entry, "event_time_window", reason))
                continue
            log_data = merged(labels, metadata, org_id)
            level = find_level(metadata) or stream_level
            checked = (
                shared_clean
                and len(log_data) <= MAX_LOG_DATA_KEYS
                and (nul_free or not metadata or no_nul(metadata))
            )
            device_id = stream.labels[device]
            mapped.shipped.append(Shipped(device_id, level, line, log_data, ts, checked))
            mapped.places.append((index, entry))
    return mapped


def no_nul(pairs: dict[str, str]) -> bool:
    return "\x00" not in "".join(pairs) and "\x00" not in "".join(pairs.values())


def event_time(ns: int) -> datetime | None:
    """The entry's time; None for one no calendar holds."""
    try:
        return from_epoch_ns(ns)
    except (OverflowError, OSError, ValueError):
        return None


def find_level(pairs: dict[str, str]) -> LogLevel | None:
    for key in LEVEL_KEYS:
        if key in pairs and (level := LEVEL_ALIASES.get(pairs[key].strip().lower())):
            return level
    return None


def merged(labels: dict[str, str], metadata: dict[str, str], org_id: str) -> dict[str, Any]:
    """Labels, then structured metadata, then the org id, a name taken given the suffix."""
    if not metadata and not org_id:
        return dict(labels)
    log_data: dict[str, Any] = dict(labels)
    extra = {**metadata, "org_id": org_id} if org_id else metadata
    for name, value in extra.items():
        while name in log_data:
            name += CLASH_SUFFIX
        log_data[name] = value
    return log_data


class RefusedEntries(FleetlogError):
    """Some entries of a push broke a rule; the others were stored."""

    status = 400
    code = "invalid_entries"


def raise_refusals(mapped: Mapped, shipment: Shipment) -> None:
    """Raise the answer for the refused entries of a push, if any: 403 when each was refused
    for the key's device prefix, else 400; `detail` lists (the first 100 of) them."""
    SHIPPED_RECORDS.labels("loki", "refused").inc(len(mapped.refusals))
    refusals = mapped.refusals + [
        EntryRefusal(*mapped.places[refusal.index], refusal.rule, refusal.message, refusal.status)
        for refusal in shipment.refusals
    ]
    if not refusals:
        return
    refusals.sort(key=lambda refusal: (refusal.stream, refusal.entry))
    message = f"{len(refusals)} entries were refused and {len(shipment.message_ids)} stored"
    if len(refusals) > MAX_LISTED:
        message += f"; the first {MAX_LISTED} refused are listed"
    detail = [refusal.as_detail() for refusal in refusals[:MAX_LISTED]]
    if all(refusal.status == 403 for refusal in refusals):
        raise Forbidden(message, detail=detail)
    raise RefusedEntries(message, detail=detail)
