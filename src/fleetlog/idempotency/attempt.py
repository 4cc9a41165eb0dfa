"""One attempt of a request that carries an Idempotency-Key, from its body to its answer.

The HTTP layer opens the attempt (api/idempotency.py) and it is current for the request's task:
the key is claimed the moment the body has been read, before anything of it is processed;
`Ingest` hands the key to the queue with the records, or, when the key was queued by an earlier
attempt whose answer was lost, answers with what was kept instead of storing again (once the
queue has those records as durable as a put leaves them); at the end the first answer is kept,
or the key released when nothing was stored.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime

from fleetlog.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, Unavailable
from fleetlog.idempotency.answers import (
    Answer,
    AnswerRegistry,
    Found,
    Mark,
    Ticket,
    fingerprint,
    key_name,
)
from fleetlog.queue import Queue
from fleetlog.records import LogRecord

log = logging.getLogger(__name__)

# How long a retry waits for the request holding its key before answering 409, and what the
# 409 asks it to wait then.
IN_FLIGHT_WAIT_S = 5.0
IN_FLIGHT_RETRY_AFTER_S = 1.0
FIRST_POLL_S = 0.01
LAST_POLL_S = 0.25


class Replayed(Exception):
    """The key's first answer, to be sent again instead of processing the request."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("an Idempotency-Key's first answer is sent again")
        self.answer = answer


class Attempt:
    def __init__(
        self,
        registry: AnswerRegistry,
        key: str,
        *,
        method: str,
        path: str,
        wait: float = IN_FLIGHT_WAIT_S,
    ) -> None:
        self.registry = registry
        self.key = key
        self.method = method
        self.path = path
        self.wait = wait
        self.ticket: Ticket | None = None
        self.stored = False

    async def claim(self, subject: str, body: bytes | bytearray) -> None:
        """Claim the key for this request; raises to answer it otherwise (see Found)."""
        name = key_name(subject, self.key)
        request_print = fingerprint(self.method, self.path, body)
        deadline = time.monotonic() + self.wait
        pause = FIRST_POLL_S
        while True:
            ticket = await self.registry.claim(name, request_print)
            if ticket.found is Found.OTHER_REQUEST:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for another request (method, path or body)"
                )
            if ticket.found is Found.ANSWERED and ticket.answer is not None:
                raise Replayed(ticket.answer)
            if ticket.found is not Found.IN_FLIGHT:
                self.ticket = ticket
                return
            if time.monotonic() + pause > deadline:
                raise IdempotencyKeyInFlight(
                    "a request with this Idempotency-Key is being processed; retry",
                    retry_after=IN_FLIGHT_RETRY_AFTER_S,
                )
            await asyncio.sleep(pause)
            pause = min(2 * pause, LAST_POLL_S)

    def received_at(self) -> datetime:
        """The request's receive time: the first attempt's when it queued the records."""
        if self.ticket is not None and self.ticket.queued is not None:
            return self.ticket.queued.received_at
        return datetime.now(UTC)

    async def put(
        self, queue: Queue, records: Sequence[LogRecord], *, received_at: datetime
    ) -> list[str]:
        """Queue the records with the key, or answer with the ids an earlier attempt got."""
        ticket = self.ticket
        if ticket is None:
            return await queue.put(records)
        if ticket.queued is not None:
            if len(records) > ticket.queued.count:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key stored fewer records than this request holds"
                )
            # Its first attempt may have been refused for want of replica acknowledgements:
            # this answer waits for them as that one did.
            await queue.ensure_durable(ticket.name)
            self.stored = True
            return ticket.queued.message_ids[: len(records)]
        mark = Mark(ticket.name, ticket.token, ticket.fingerprint, received_at)
        message_ids = await queue.put(records, mark=mark)
        self.stored = True
        return message_ids

    async def settle(self, answer: Answer | None) -> None:
        """Keep the answer of a request that stored its records; else free the key."""
        ticket = self.ticket
        if ticket is None:
            return
        try:
            if not self.stored:
                await self.registry.release(ticket)
            elif answer is not None and answer.status < 500:
                await self.registry.answer(ticket, answer)
        except Unavailable:
            # Left queued, a retry is answered again from what the queue kept; left pending,
            # it waits for the pending TTL (docs/lifecycle.md).
            log.warning("an Idempotency-Key's outcome could not be kept (stored: %s)", self.stored)


CURRENT: ContextVar[Attempt | None] = ContextVar("fleetlog_idempotent_attempt", default=None)
