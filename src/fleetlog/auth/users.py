"""People who sign in: a name, a role, an argon2 password hash and a token version."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.auth.principals import ROLE_GRANTS, Principal, Role
from fleetlog.errors import Conflict, NotFound
from fleetlog.store.engine import connected
from fleetlog.store.logs import as_utc
from fleetlog.store.tables import sessions, users


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    token_version: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> "User":
        return cls(
            id=row["id"],
            name=row["name"],
            role=Role(row["role"]),
            token_version=row["token_version"],
            created_at=as_utc(row["created_at"]),
        )

    def principal(self) -> Principal:
        return Principal(kind="user", id=self.id, name=self.name, grants=ROLE_GRANTS[self.role])


class UserStore:
    """The `users` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, name: str, *, role: Role, password_hash: str) -> User:
        values = {
            "name": name,
            "role": role.value,
            "password_hash": password_hash,
            "token_version": 0,
            "created_at": datetime.now(UTC),
        }
        try:
            async with connected(self.engine, transaction=True) as conn:
                result = await conn.execute(insert(users).returning(users), values)
                row = result.mappings().one()
        except IntegrityError:
            raise Conflict(f"a user named {name!r} exists already") from None
        return User.from_row(row)

    async def list(self) -> list[User]:
        async with connected(self.engine) as conn:
            rows = (await conn.execute(select(users).order_by(users.c.id))).mappings()
            return [User.from_row(row) for row in rows]

    async def by_name(self, name: str) -> tuple[User, str] | None:
        """The user and their password hash."""
        async with connected(self.engine) as conn:
            query = select(users).where(users.c.name == name)
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else (User.from_row(row), row["password_hash"])

    async def set_password(self, name: str, *, password_hash: str) -> User:
        """Change the password and invalidate every token issued before."""
        statement = (
            update(users)
            .where(users.c.name == name)
            .values(password_hash=password_hash, token_version=users.c.token_version + 1)
            .returning(users)
        )
        async with connected(self.engine, transaction=True) as conn:
            row = (await conn.execute(statement)).mappings().first()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        return User.from_row(row)

    async def delete(self, name: str) -> None:
        """Delete the user and end their sign-ins.

        Their tokens name them by id, which SQLite may give to the next user created: without
        their sessions, those tokens can never stand for that user.
        """
        statement = delete(users).where(users.c.name == name).returning(users.c.id)
        async with connected(self.engine, transaction=True) as conn:
            user_id = (await conn.execute(statement)).scalar_one_or_none()
            if user_id is not None:
                await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        if user_id is None:
            raise NotFound(f"no user named {name!r}")

    async def count(self) -> int:
        async with connected(self.engine) as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())
