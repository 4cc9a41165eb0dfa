"""Idempotency-Key of a whole ingest request: what a retry finds, and the first answer kept.

A key (scoped to its credential) goes through three states:

| state    | holds                                   | set by                                   |
|----------|-----------------------------------------|------------------------------------------|
| pending  | the claiming request's token, the       | `claim`; forgotten after the pending TTL |
|          | request's fingerprint                   | or at `release`                          |
| queued   | the fingerprint, the receive time and   | the queue, in the same atomic step that  |
|          | the message ids of the records stored   | makes the records durable (the Redis     |
|          |                                         | script with the XADD, the SQLite commit) |
| answered | the fingerprint and the first answer    | `answer`, once the route has answered    |

Queued and answered keys are remembered for FLEETLOG_IDEMPOTENCY_TTL. Because the queue marks
the key with the records, a write that was applied is never taken for one that was not: a 503
for a Redis call Redis did apply, or a crash before the answer was kept, leaves the key queued,
and its retry is answered again from the receive time and message ids kept, storing nothing.
"""

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

# How long a claim holds a key before its request marks it queued. Longer than a put takes
# (the Redis client's 5 s timeout, a group commit under load); short, because a process that
# dies holding claims makes their retries wait this long (answered 409 meanwhile).
PENDING_TTL = timedelta(seconds=10)


class Found(StrEnum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    QUEUED = "queued"
    ANSWERED = "answered"
    OTHER_REQUEST = "other_request"


@dataclass(frozen=True, slots=True)
class Answer:
    """A first answer, as kept for its retries: status, the headers that matter, body."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Queued:
    """What the queue kept of the first request's records: enough to answer it again."""

    received_at: datetime
    id_prefix: str
    first_id: int
    count: int

    @property
    def message_ids(self) -> list[str]:
        return [f"{self.id_prefix}{self.first_id + index}" for index in range(self.count)]


@dataclass(frozen=True, slots=True)
class Mark:
    """Written by the queue with a keyed request's records: the key is queued."""

    name: str
    token: str
    fingerprint: str
    received_at: datetime

    @property
    def received_us(self) -> int:
        """The receive time as kept with the key: epoch microseconds."""
        return round(self.received_at.timestamp() * 1_000_000)


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a claim found; `token` marks the claim when the key was new."""

    name: str
    token: str
    fingerprint: str
    found: Found
    queued: Queued | None = None
    answer: Answer | None = None


class AnswerRegistry(Protocol):
    async def claim(self, name: str, fingerprint: str) -> Ticket:
        """Claim the key if nobody holds it; else say what holds it."""

    async def answer(self, ticket: Ticket, answer: Answer) -> None:
        """Keep the first answer of a queued key for its retries."""

    async def release(self, ticket: Ticket) -> None:
        """Nothing was stored under this claim: a retry is processed afresh."""


def key_name(subject: str, key: str) -> str:
    """The name a request's key is kept under: scoped to the credential, 32 hex digits."""
    hashed = hashlib.sha256(f"request\x00{subject}\x00{key}".encode(errors="surrogatepass"))
    return hashed.hexdigest()[:32]


def fingerprint(method: str, path: str, body: bytes | bytearray) -> str:
    """The request a key was first used for: method, path and a digest of the decoded body."""
    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{method} {path} {digest}".encode()).hexdigest()[:32]


def shard_of(name: str, shards: int) -> int:
    """The stream shard a keyed request goes to, so its key and its entry share a hash tag."""
    return zlib.crc32(name.encode()) % shards
