"""Ingest: the one path every ingest route takes — accept validated logs, make them durable."""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetlog.auth.principals import Principal
from fleetlog.config import Settings
from fleetlog.errors import InvalidPayload, field_path
from fleetlog.event_time import EventBounds, EventWindow, rfc3339
from fleetlog.idempotency.attempt import CURRENT
from fleetlog.metrics import INGEST_BATCH_SIZE, LOGS_ACCEPTED, SHIPPED_RECORDS
from fleetlog.queue import Queue
from fleetlog.records import LogIn, LogLevel, LogRecord
from fleetlog.shippers.intake import Refusal, Rules, Shipped

ACCEPTED_BY_LEVEL = {level.value: LOGS_ACCEPTED.labels(level.value) for level in LogLevel}

# Where the timestamp of the log at an index sits in the request body, for error details.
Locate = Callable[[int], tuple[int | str, ...]]


def in_batch(index: int) -> tuple[int | str, ...]:
    return ("logs", index, "timestamp")


def alone(index: int) -> tuple[int | str, ...]:
    return ("timestamp",)


def event_window(settings: Settings) -> EventWindow:
    """The window of every ingest route: never older than the retention keeps logs."""
    max_age = settings.max_event_age
    if settings.retention_days is not None:
        max_age = min(max_age, timedelta(days=settings.retention_days))
    return EventWindow(max_age=max_age, max_skew=settings.max_event_skew)


@dataclass(slots=True)
class Shipment:
    """What became of a shipper's records: the message id of each accepted one, with its
    index in the request, and why each other one was refused."""

    message_ids: list[str]
    indexes: list[int]
    refusals: list[Refusal]
    received_at: datetime


class Ingest:
    def __init__(self, queue: Queue, *, window: EventWindow, max_line_bytes: int) -> None:
        self.queue = queue
        self.window = window
        self.max_line_bytes = max_line_bytes

    async def accept(
        self, logs: Sequence[LogIn], *, locate: Locate = in_batch
    ) -> tuple[list[str], datetime]:
        """Queue the logs durably; returns their message ids and the receive time.

        All or none: a log whose event time is outside the window refuses them all.
        """
        attempt = CURRENT.get()
        received_at = datetime.now(UTC) if attempt is None else attempt.received_at()
        records = accept_records(logs, self.window.at(received_at), locate)
        return await self.put(records, received_at), received_at

    async def ship(
        self, shipped: Sequence[Shipped], *, protocol: str, principal: Principal | None
    ) -> Shipment:
        """Queue durably the records of a shipper's request that pass fleetlog's rules.

        Record by record: one refused does not refuse the others. Raises, as `accept` does,
        only when nothing could be made durable (the queue is full or down).
        """
        attempt = CURRENT.get()
        received_at = datetime.now(UTC) if attempt is None else attempt.received_at()
        rules = Rules(
            self.window.at(received_at),
            protocol=protocol,
            max_line_bytes=self.max_line_bytes,
            principal=principal,
        )
        passed = rules.sort(shipped)
        message_ids = await self.put(passed.records, received_at) if passed.records else []
        SHIPPED_RECORDS.labels(protocol, "accepted").inc(len(message_ids))
        SHIPPED_RECORDS.labels(protocol, "refused").inc(len(passed.refusals))
        return Shipment(message_ids, passed.indexes, passed.refusals, received_at)

    async def put(self, records: list[LogRecord], received_at: datetime) -> list[str]:
        """Queue the records; a request with an Idempotency-Key goes through its attempt."""
        attempt = CURRENT.get()
        if attempt is None:
            message_ids = await self.queue.put(records)
        else:
            message_ids = await attempt.put(self.queue, records, received_at=received_at)
        INGEST_BATCH_SIZE.observe(len(records))
        for level, count in Counter(record.level for record in records).items():
            ACCEPTED_BY_LEVEL[level].inc(count)
        return message_ids


def accept_records(logs: Sequence[LogIn], bounds: EventBounds, locate: Locate) -> list[LogRecord]:
    """The records of the logs, each at its event time; InvalidPayload naming every log
    outside the window."""
    received_at, place = bounds.received_at, bounds.place
    records = []
    refused = []
    for index, log in enumerate(logs):
        ts = received_at if log.timestamp is None else place(log.timestamp)
        if ts is None:
            refused.append(locate(index))
        else:
            records.append(LogRecord.accept(log, ts=ts, received_at=received_at))
    if refused:
        raise outside_window(refused, bounds)
    return records


def outside_window(locs: list[tuple[int | str, ...]], bounds: EventBounds) -> InvalidPayload:
    earliest, latest = rfc3339(bounds.earliest), rfc3339(bounds.latest)
    detail: list[dict[str, Any]] = [
        {
            "loc": ["body", *loc],
            "field": field_path(loc),
            "rule": "event_time_window",
            "message": f"must fall between {earliest} and {latest} (a number counts epoch "
            "seconds if that fits, else milliseconds)",
            "earliest": earliest,
            "latest": latest,
        }
        for loc in locs
    ]
    return InvalidPayload("an event time is outside the accepted window", detail=detail)
