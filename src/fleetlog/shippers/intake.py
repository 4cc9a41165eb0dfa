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
from fleetlog.records import LEVEL_NAMES, MAX_DEVICE_ID, LogLevel, LogRecord, check_log_data

TRUNCATED = " …[truncated {dropped} bytes]"


@dataclass(slots=True)
class Shipped:
    """One record as its protocol maps it; `ts` None means "when fleetlog received it".
    `checked`: the mapping built `log_data` within its rules (`check_log_data`) already."""

    device_id: str
    level: LogLevel
    message: str
    log_data: dict[str, Any]
    ts: datetime | None = None
    checked: bool = False


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
        """One pass over the records: it runs for every shipped log, so the rules a record
        passes cost a few comparisons, and only a refused one is looked at twice."""
        result = Sorted([], [], [])
        records, indexes = result.records, result.indexes
        received_at = self.bounds.received_at
        place = self.bounds.place
        prefix = self.prefix
        # Below this many characters a message cannot be over `max_line_bytes` of UTF-8.
        short = self.max_line_bytes // 4
        for index, item in enumerate(shipped):
            device_id, message, ts = item.device_id, item.message, item.ts
            if ts is not None:
                ts = place(ts)
            if (
                ts is None
                and item.ts is not None
                or not 0 < len(device_id) <= MAX_DEVICE_ID
                or "\x00" in device_id
                or "\x00" in message
                or (prefix is not None and not device_id.startswith(prefix))
            ):
                result.refusals.append(self.refusal(index, item))
                continue
            if not item.checked:
                try:
                    check_log_data(item.log_data)
                except PydanticCustomError as exc:
                    rule, reason = f"log_data.{exc.type}", f"log_data {exc.message()}"
                    result.refusals.append(Refusal(index, rule, reason))
                    continue
            if len(message) > short:
                message = self.cut(message)
            records.append(
                LogRecord(
                    device_id,
                    LEVEL_NAMES[item.level],
                    message,
                    item.log_data,
                    received_at if ts is None else ts,
                    received_at,
                )
            )
            indexes.append(index)
        return result

    def refusal(self, index: int, item: Shipped) -> Refusal:
        """Why `item` is refused: the first of the rules checked before its log_data."""
        device_id = item.device_id
        if not device_id or len(device_id) > MAX_DEVICE_ID:
            reason = f"the device id must have 1 to {MAX_DEVICE_ID} characters"
            return Refusal(index, "device_id", reason)
        if "\x00" in device_id or "\x00" in item.message:
            return Refusal(index, "no_nul", "the device id and the message must not contain NUL")
        if self.prefix is not None and not device_id.startswith(self.prefix):
            reason = f"this key may only write devices whose id starts with {self.prefix!r}"
            return Refusal(index, "device_prefix", reason, status=403)
        assert item.ts is not None
        earliest, latest = rfc3339(self.bounds.earliest), rfc3339(self.bounds.latest)
        reason = f"the event time {rfc3339(item.ts)} is not between {earliest} and {latest}"
        return Refusal(index, "event_time_window", reason)

    def cut(self, message: str) -> str:
        """The message, cut at `max_line_bytes` of UTF-8 (on a character) with a marker."""
        encoded = message.encode()
        if len(encoded) <= self.max_line_bytes:
            return message
        LINES_TRUNCATED.labels(self.protocol).inc()
        kept = encoded[: self.max_line_bytes].decode(errors="ignore")
        return kept + TRUNCATED.format(dropped=len(encoded) - len(kept.encode()))
