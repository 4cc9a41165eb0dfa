"""API keys: random, high-entropy secrets, kept only as their SHA-256 and found by it."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.auth.principals import KEY_GRANTS, Principal, Scope
from fleetlog.errors import Conflict, NotFound
from fleetlog.ratelimit import Limit
from fleetlog.store.engine import connected
from fleetlog.store.logs import as_utc
from fleetlog.store.tables import api_keys

KEY_PREFIX = "flk_"
# 32 random bytes: guessing is hopeless, so a fast hash is enough to keep keys safe at rest.
KEY_BYTES = 32
HINT_CHARS = 8


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    hint: str
    scope: Scope
    device_prefix: str | None
    rate: float | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> "ApiKey":
        revoked_at = row["revoked_at"]
        return cls(
            id=row["id"],
            name=row["name"],
            hint=row["hint"],
            scope=Scope(row["scope"]),
            device_prefix=row["device_prefix"],
            rate=row["rate"],
            burst=row["burst"],
            created_at=as_utc(row["created_at"]),
            revoked_at=None if revoked_at is None else as_utc(revoked_at),
        )

    def principal(self) -> Principal:
        return Principal(
            kind="key",
            id=self.id,
            name=self.name,
            grants=KEY_GRANTS[self.scope],
            device_prefix=self.device_prefix,
            limit=None if self.rate is None or self.burst is None else Limit(self.rate, self.burst),
        )


class KeyStore:
    """The `api_keys` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self,
        *,
        name: str,
        scope: Scope,
        device_prefix: str | None,
        rate: float | None,
        burst: int | None,
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it and its secret, which is never stored nor shown again."""
        secret = new_key()
        values = {
            "name": name,
            "key_hash": key_digest(secret),
            "hint": secret[: len(KEY_PREFIX) + HINT_CHARS],
            "scope": scope.value,
            "device_prefix": device_prefix,
            "rate": rate,
            "burst": burst,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        try:
            async with connected(self.engine, transaction=True) as conn:
                result = await conn.execute(insert(api_keys).returning(api_keys), values)
                row = result.mappings().one()
        except IntegrityError:
            raise Conflict(f"a key named {name!r} exists already") from None
        return ApiKey.from_row(row), secret

    async def list(self) -> list[ApiKey]:
        async with connected(self.engine) as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.id))).mappings()
            return [ApiKey.from_row(row) for row in rows]

    async def revoke(self, key: int | str) -> ApiKey:
        """Revoke one key: by id given an int, by name given a str; a revoked key stays so."""
        match = api_keys.c.id == key if isinstance(key, int) else api_keys.c.name == key
        revoked_at = func.coalesce(api_keys.c.revoked_at, datetime.now(UTC))
        async with connected(self.engine, transaction=True) as conn:
            result = await conn.execute(
                update(api_keys).where(match).values(revoked_at=revoked_at).returning(api_keys)
            )
            row = result.mappings().one_or_none()
        if row is None:
            what = f"numbered {key}" if isinstance(key, int) else f"named {key!r}"
            raise NotFound(f"no key {what}")
        return ApiKey.from_row(row)

    async def active(self, secret: str) -> ApiKey | None:
        """The unrevoked key whose secret this is, if any."""
        query = select(api_keys).where(
            api_keys.c.key_hash == key_digest(secret), api_keys.c.revoked_at.is_(None)
        )
        async with connected(self.engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else ApiKey.from_row(row)

    async def count(self) -> int:
        """How many keys were ever created, revoked ones included."""
        async with connected(self.engine) as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
            )
