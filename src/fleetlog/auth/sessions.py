"""Sign-ins as token families: each refresh token works once, and a replayed one ends them all."""

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.auth.users import User
from fleetlog.store.engine import connected
from fleetlog.store.tables import sessions, users

SESSION_ID_BYTES = 16


class SessionStore:
    """The `sessions` table: the tokens of a sign-in carry its id, refresh tokens its generation."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def open(self, user_id: int, *, until: datetime) -> str:
        """Start the family of a new sign-in, at generation 0; forget families past their end."""
        # Random, never a counter: SQLite may hand a deleted row's number out again.
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        now = datetime.now(UTC)
        values = {
            "id": session_id,
            "user_id": user_id,
            "generation": 0,
            "created_at": now,
            "expires_at": until,
            "revoked_at": None,
        }
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            await conn.execute(insert(sessions), values)
        return session_id

    async def holder(self, session_id: str, user_id: int) -> User | None:
        """The user whose live (unended, unexpired) session this is."""
        query = (
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(
                sessions.c.id == session_id,
                users.c.id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > datetime.now(UTC),
            )
        )
        async with connected(self.engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else User.from_row(row)

    async def rotate(
        self, session_id: str, *, user_id: int, generation: int, until: datetime
    ) -> int | None:
        """The session's next generation, if `generation` is its current one; else None.

        Only one of concurrent rotations from the same generation gets past the compare and
        set. Presenting a generation the session has moved past replays a used refresh token:
        someone else holds a copy of it, so the whole session ends.
        """
        now = datetime.now(UTC)
        live = (
            (sessions.c.id == session_id)
            & (sessions.c.user_id == user_id)
            & sessions.c.revoked_at.is_(None)
        )
        advance = (
            update(sessions)
            .where(live, sessions.c.generation == generation, sessions.c.expires_at > now)
            .values(generation=sessions.c.generation + 1, expires_at=until)
            .returning(sessions.c.generation)
        )
        end = update(sessions).where(live, sessions.c.generation > generation)
        async with connected(self.engine, transaction=True) as conn:
            advanced: int | None = (await conn.execute(advance)).scalar_one_or_none()
            if advanced is None:
                await conn.execute(end.values(revoked_at=now))
        return advanced
