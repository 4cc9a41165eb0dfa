"""Idempotency keys in the embedded SQLite store: the `idempotency_keys` table (migration 0007).

A claim is one write transaction: keys past their time are freed, free keys are taken, and what
holds each key is read back, with SQLite's one writer at a time making it atomic. Each claim
also purges a few more expired rows than it could add, oldest first, so the table stays the
size of the keys still remembered without a sweeper of its own.
"""

import time
from collections.abc import Collection, Sequence
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.idempotency import PENDING_TTL, Claim, Seen, digest, new_token
from fleetlog.store.engine import connected
from fleetlog.store.tables import idempotency_keys as table

MIN_PURGE = 100


class SqliteRegistry:
    def __init__(
        self, engine: AsyncEngine, *, ttl: timedelta, pending_ttl: timedelta = PENDING_TTL
    ) -> None:
        self.engine = engine
        self.ttl = ttl.total_seconds()
        self.pending_ttl = min(pending_ttl, ttl).total_seconds()

    async def claim(self, keys: Collection[str]) -> Claim:
        token = new_token()
        if not keys:
            return Claim(token, {})
        names = {digest(key): key for key in keys}
        now = time.time()
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(
                delete(table).where(table.c.key.in_(names), table.c.expires_at <= now)
            )
            await conn.execute(
                insert(table).on_conflict_do_nothing(),
                [
                    {"key": name, "token": token, "expires_at": now + self.pending_ttl}
                    for name in names
                ],
            )
            rows = await conn.execute(
                select(table.c.key, table.c.token).where(table.c.key.in_(names))
            )
            holders: dict[str, str | None] = dict(rows.all())
            await purge(conn, now, limit=MIN_PURGE + 2 * len(names))
        return Claim(token, {names[name]: seen(holders[name], token) for name in names})

    async def confirm(self, claim: Claim, keys: Sequence[str]) -> None:
        if not keys:
            return
        stored = insert(table)
        # Stored, unless another request claimed the key since this one's claim expired.
        stored = stored.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"token": None, "expires_at": stored.excluded.expires_at},
            where=table.c.token == claim.token,
        )
        until = time.time() + self.ttl
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(
                stored, [{"key": digest(key), "token": None, "expires_at": until} for key in keys]
            )

    async def release(self, claim: Claim, keys: Sequence[str]) -> None:
        if not keys:
            return
        names = [digest(key) for key in keys]
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(
                delete(table).where(table.c.key.in_(names), table.c.token == claim.token)
            )


def seen(holder: str | None, token: str) -> Seen:
    if holder is None:
        return Seen.STORED
    return Seen.NEW if holder == token else Seen.IN_FLIGHT


async def purge(conn: AsyncConnection, now: float, *, limit: int) -> None:
    """Forget up to `limit` expired keys, the longest expired first."""
    expired = (
        select(table.c.key).where(table.c.expires_at <= now).order_by(table.c.expires_at)
    ).limit(limit)
    await conn.execute(delete(table).where(table.c.key.in_(expired)))
