"""Request keys in the embedded SQLite store: rows of `idempotency_keys` (migrations 0007, 0008).

A claim is one write transaction, as for `_id`s (sqlite_registry.py), and purges expired rows
as it goes. The group commit marks a key queued in the transaction that stores its records
(store/sqlite_writer.py); `answer` then keeps the first answer beside it.
"""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.idempotency import new_token
from fleetlog.idempotency.answers import PENDING_TTL, Answer, Found, Queued, Ticket
from fleetlog.idempotency.sqlite_registry import MIN_PURGE, purge
from fleetlog.store.engine import connected
from fleetlog.store.tables import idempotency_keys as table

HELD = (
    table.c.token,
    table.c.fingerprint,
    table.c.received_us,
    table.c.first_id,
    table.c.id_count,
    table.c.answer_status,
    table.c.answer_headers,
    table.c.answer_body,
)


class SqliteAnswers:
    def __init__(
        self, engine: AsyncEngine, *, ttl: timedelta, pending_ttl: timedelta = PENDING_TTL
    ) -> None:
        self.engine = engine
        self.ttl = ttl.total_seconds()
        self.pending_ttl = min(pending_ttl, ttl).total_seconds()

    async def claim(self, name: str, fingerprint: str) -> Ticket:
        token = new_token()
        now = time.time()
        claimed = {
            "key": name,
            "token": token,
            "fingerprint": fingerprint,
            "expires_at": now + self.pending_ttl,
        }
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(delete(table).where(table.c.key == name, table.c.expires_at <= now))
            await conn.execute(insert(table).on_conflict_do_nothing(), [claimed])
            held = (await conn.execute(select(*HELD).where(table.c.key == name))).one()
            await purge(conn, now, limit=MIN_PURGE + 2)
        return ticket_of(name, token, fingerprint, held._mapping)

    async def answer(self, ticket: Ticket, answer: Answer) -> None:
        kept = (
            update(table)
            .where(
                table.c.key == ticket.name,
                table.c.fingerprint == ticket.fingerprint,
                table.c.first_id.is_not(None),
            )
            .values(
                answer_status=answer.status,
                answer_headers=orjson.dumps([list(pair) for pair in answer.headers]).decode(),
                answer_body=answer.body,
                expires_at=time.time() + self.ttl,
            )
        )
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(kept)

    async def release(self, ticket: Ticket) -> None:
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(
                delete(table).where(table.c.key == ticket.name, table.c.token == ticket.token)
            )


def ticket_of(name: str, token: str, fingerprint: str, held: Any) -> Ticket:
    """What a claim found of the key's row: its own claim, another request's, or done."""
    if held["token"] == token:
        return Ticket(name, token, fingerprint, Found.NEW)
    if held["fingerprint"] != fingerprint:
        return Ticket(name, token, fingerprint, Found.OTHER_REQUEST)
    if held["first_id"] is None:
        return Ticket(name, token, fingerprint, Found.IN_FLIGHT)
    received_at = datetime.fromtimestamp(held["received_us"] / 1_000_000, UTC)
    queued = Queued(received_at, "", held["first_id"], held["id_count"])
    if held["answer_status"] is None:
        return Ticket(name, token, fingerprint, Found.QUEUED, queued=queued)
    headers = [(key, value) for key, value in orjson.loads(held["answer_headers"])]
    answer = Answer(held["answer_status"], headers, bytes(held["answer_body"]))
    return Ticket(name, token, fingerprint, Found.ANSWERED, queued=queued, answer=answer)
