"""Idempotency keys: a client's retry of a request stores nothing twice.

A request claims its keys before its records are queued. Each key is then either new (claimed
by this request: store its record, then `confirm` the key, or `release` it if nothing was
stored), stored already (by an earlier request: answer as a duplicate), or in flight (claimed by
a request still running, or by one that died mid-way until its claim's short `pending_ttl`
passes: answer "retry later"). A confirmed key is remembered for `ttl` (FLEETLOG_IDEMPOTENCY_TTL),
across restarts: in Redis (AOF) in the pipeline, in the SQLite store embedded.

The one window: a process that dies after its records became durable and before it confirmed
their keys leaves them pending; once `pending_ttl` passes, a retry stores those records again.
The same holds for a request whose records took longer than `pending_ttl` to become durable.

Keys are kept as a digest (128 bits of SHA-256), so that a long key costs no more than a short
one and any text is a safe Redis key name.
"""

import base64
import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

# Long enough for any request to make its records durable (a full backlog answers at once);
# short enough that a retry after a crash is answered "retry later" only briefly.
PENDING_TTL = timedelta(minutes=1)


class Seen(StrEnum):
    NEW = "new"
    STORED = "stored"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class Claim:
    """What one request found of its keys; `token` marks the keys it holds."""

    token: str
    seen: dict[str, Seen]

    def new(self) -> list[str]:
        return [key for key, seen in self.seen.items() if seen is Seen.NEW]


class Registry(Protocol):
    async def claim(self, keys: Collection[str]) -> Claim:
        """Claim the keys nobody holds; say of each other whether it is stored or in flight."""

    async def confirm(self, claim: Claim, keys: Sequence[str]) -> None:
        """The records of these claimed keys are durable: remember the keys for the TTL."""

    async def release(self, claim: Claim, keys: Sequence[str]) -> None:
        """Nothing was stored for these claimed keys: a retry may claim them again."""


def digest(key: str) -> str:
    """The name a key is kept under: 22 URL-safe characters, whatever the key."""
    hashed = hashlib.sha256(key.encode(errors="surrogatepass")).digest()[:16]
    return base64.urlsafe_b64encode(hashed).rstrip(b"=").decode()


def new_token() -> str:
    return secrets.token_hex(8)
