"""The queue between ingest and storage; `put` returns only once the logs are durable."""

from collections.abc import Sequence
from typing import Protocol

from fleetlog.idempotency.answers import Mark
from fleetlog.records import LogRecord


class Queue(Protocol):
    async def start(self) -> None:
        """Open connections and start background tasks."""

    async def put(self, records: Sequence[LogRecord], *, mark: Mark | None = None) -> list[str]:
        """Make the records durable and return one message id per record, in order.

        With a `mark`, the request's Idempotency-Key is marked queued in the same atomic step
        that makes the records durable.
        """

    async def ensure_durable(self, name: str) -> None:
        """Return once the records an earlier `put` marked with the key `name` are as durable
        as a `put` leaves them: that put may have been refused after its write was applied."""

    async def backlog(self) -> int:
        """How many accepted logs are not yet in the store."""

    async def ping(self) -> bool:
        """Whether the queue's parts are up and answer."""

    async def writable(self) -> dict[str, bool]:
        """Whether the store takes writes now, check by check (cheap enough for every probe)."""

    async def close(self) -> None:
        """Finish what was accepted and release resources."""
