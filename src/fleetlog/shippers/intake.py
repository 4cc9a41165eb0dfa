"""What every shipper's protocol shares: its records held to fleetlog's rules, one by one.

A protocol maps each of its records onto a `Shipped` (device, level, message, log_data, event
time). Unlike the reference API's batch, which is all or none, shippers expect an answer per
record: `sort` keeps the records that pass and says why each other one was refused, so a
protocol can answer the way its clients understand (a per-item status, `partial_success`, a 400
naming the entry). The rules are the reference API's, but for the line: a shipper's line may be
up to `max_line_bytes` (a longer one is cut and marked, not refused).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import PydanticCustomError

from fleetlog.auth.principals import Principal
from fleetlog.event_time import EventBounds, rfc3339
from fleetlog.metrics import LINES_TRUNCATED
from fleetlog.records import MAX_DEVICE_ID, LogLevel, LogRecord, check_log_data

TRUNCATED = " …[truncated {dropped} bytes]"


@dataclass(slots=True)
class Shipped:
    """One record as its protocol maps it; `ts` None means "when fleetlog received it"."""

    device_id: str
    level: LogLevel
    message: str
    log_data: dict[str, Any]
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the record at `index` was not accepted: a rule's name and a sentence, with the HTTP
    status it stands for (400 for the record, 403 for the credential's device prefix)."""

    index: int
    rule: str
    message: str
    status: int = 400

    def as_detail(self) -> dict[str, Any]:
        return {"index": self.index, "rule": self.rule, "message": self.message}


@dataclass(slots=True)
class Sorted:
    """The records that pass, with their indexes in the request, and the refusals."""

    records: list[LogRecord]
    indexes: list[int]
    refusals: list[Refusal]


class Rules:
    """fleetlog's rules for shipped records, for one protocol and one receive time."""

    def __init__(
        self,
        bounds: EventBounds,
        *,
        protocol: str,
        max_line_bytes: int,
        principal: Principal | None = None,
    ) -> None:
        self.bounds = bounds
        self.protocol = protocol
        self.max_line_bytes = max_line_bytes
        self.prefix = None if principal is None else principal.device_prefix

    def sort(self, shipped: Sequence[Shipped]) -> Sorted:
        result = Sorted([], [], [])
        received_at = self.bounds.received_at
        for index, item in enumerate(shipped):
            try:
                ts = self.check(item)
            except Refused as refused:
                result.refusals.append(
                    Refusal(index, refused.rule, refused.message, refused.status)
                )
                continue
            result.records.append(
                LogRecord(
                    device_id=item.device_id,
                    level=item.level.value,
                    message=self.cut(item.message),
                    log_data=item.log_data,
                    ts=ts,
                    received_at=received_at,
                )
            )
            result.indexes.append(index)
        return result

    def check(self, item: Shipped) -> datetime:
        """The record's event time, once every rule passed; `Refused` names the first broken."""
        device_id = item.device_id
        if not device_id or len(device_id) > MAX_DEVICE_ID:
            raise Refused("device_id", f"the device id must have 1 to {MAX_DEVICE_ID} characters")
        if "\x00" in device_id or "\x00" in item.message:
            raise Refused("no_nul", "the device id and the message must not contain NUL")
        if self.prefix is not None and not device_id.startswith(self.prefix):
            raise Refused(
                "device_prefix",
                f"this key may only write devices whose id starts with {self.prefix!r}",
                status=403,
            )
        try:
            check_log_data(item.log_data)
        except PydanticCustomError as exc:
            raise Refused(f"log_data.{exc.type}", f"log_data {exc.message()}") from None
        if item.ts is None:
            return self.bounds.received_at
        ts = self.bounds.place(item.ts)
        if ts is None:
            earliest, latest = rfc3339(self.bounds.earliest), rfc3339(self.bounds.latest)
            raise Refused(
                "event_time_window",
                f"the event time {rfc3339(item.ts)} is not between {earliest} and {latest}",
            )
        return ts

    def cut(self, message: str) -> str:
        """The message, cut at `max_line_bytes` of UTF-8 (on a character) with a marker."""
        if len(message) * 4 <= self.max_line_bytes:
            return message
        encoded = message.encode()
        if len(encoded) <= self.max_line_bytes:
            return message
        LINES_TRUNCATED.labels(self.protocol).inc()
        kept = encoded[: self.max_line_bytes].decode(errors="ignore")
        return kept + TRUNCATED.format(dropped=len(encoded) - len(kept.encode()))


class Refused(Exception):
    def __init__(self, rule: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.status = status
