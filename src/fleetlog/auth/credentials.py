"""Managing and checking credentials: the one place the CLI and the admin routes go through."""

import math
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.auth.api_keys import ApiKey, KeyStore
from fleetlog.auth.passwords import MAX_PASSWORD, MIN_PASSWORD, hash_password, verify_password
from fleetlog.auth.principals import Role, Scope
from fleetlog.auth.sessions import SessionStore
from fleetlog.auth.users import User, UserStore
from fleetlog.errors import InvalidPayload, Unauthorized
from fleetlog.records import MAX_DEVICE_ID
from fleetlog.store.tables import MAX_ID

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
NAME = re.compile(NAME_PATTERN)
# Names never hold a ":", so `id:7` can only mean the key with id 7.
KEY_ID_PREFIX = "id:"
KEY_ID = re.compile(r"[1-9][0-9]{0,9}")
MIN_RATE = 0.001
MAX_RATE = 1_000_000.0
MAX_BURST = 1_000_000


def invalid(field: str, rule: str, message: str) -> InvalidPayload:
    return InvalidPayload(message, detail=[{"field": field, "rule": rule, "message": message}])


def check_name(name: str) -> None:
    if NAME.match(name) is None:
        raise invalid(
            "name", "pattern", "a name is 1..64 letters, digits and . _ @ -, starting alnum"
        )


def key_reference(reference: str) -> int | str:
    """`id:7` names the key with id 7; anything else is a name, even all digits."""
    if not reference.startswith(KEY_ID_PREFIX):
        return reference
    digits = reference.removeprefix(KEY_ID_PREFIX)
    if KEY_ID.fullmatch(digits) is None or int(digits) > MAX_ID:
        message = f"{KEY_ID_PREFIX} is followed by a key id, 1..{MAX_ID}"
        raise invalid("name", "key_id", message)
    return int(digits)


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        message = f"a password is {MIN_PASSWORD}..{MAX_PASSWORD} characters"
        raise invalid("password", "length", message)


@dataclass(frozen=True, slots=True)
class KeyRequest:
    name: str
    scope: Scope
    device_prefix: str | None = None
    rate: float | None = None
    burst: int | None = None

    def check(self) -> None:
        check_name(self.name)
        if self.device_prefix is not None:
            if self.scope is Scope.ADMIN:
                message = "a device prefix is for ingest and read keys"
                raise invalid("device_prefix", "scope", message)
            if not 1 <= len(self.device_prefix) <= MAX_DEVICE_ID or "\x00" in self.device_prefix:
                message = f"a device prefix is 1..{MAX_DEVICE_ID} characters"
                raise invalid("device_prefix", "length", message)
        if self.rate is not None and not MIN_RATE <= self.rate <= MAX_RATE:
            raise invalid("rate", "range", f"rate is {MIN_RATE:g}..{MAX_RATE:g} requests/s")
        if self.burst is not None and not 1 <= self.burst <= MAX_BURST:
            raise invalid("burst", "range", f"burst is 1..{MAX_BURST} requests")

    def limit(self) -> tuple[float | None, int | None]:
        """Rate and burst to keep: either one alone implies the other (one second's worth)."""
        if self.rate is None and self.burst is None:
            return None, None
        if self.rate is None:
            return float(self.burst or 1), self.burst
        return self.rate, self.burst or max(1, math.ceil(self.rate))


class Credentials:
    """API keys and users in the SQL store that every API process reads."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.keys = KeyStore(engine)
        self.users = UserStore(engine)
        self.sessions = SessionStore(engine)

    async def create_key(self, request: KeyRequest) -> tuple[ApiKey, str]:
        request.check()
        rate, burst = request.limit()
        return await self.keys.create(
            name=request.name,
            scope=request.scope,
            device_prefix=request.device_prefix,
            rate=rate,
            burst=burst,
        )

    async def revoke_key(self, reference: str) -> ApiKey:
        """Revoke the one key `reference` names: `id:<id>`, or its name."""
        return await self.keys.revoke(key_reference(reference))

    async def create_user(self, name: str, *, role: Role, password: str) -> User:
        check_name(name)
        check_password(password)
        return await self.users.create(name, role=role, password_hash=await hash_password(password))

    async def set_password(self, name: str, password: str) -> User:
        check_password(password)
        return await self.users.set_password(name, password_hash=await hash_password(password))

    async def sign_in(self, name: str, password: str) -> User:
        """The user with this name and password; the same refusal for either being wrong."""
        found = await self.users.by_name(name) if len(password) <= MAX_PASSWORD else None
        user, password_hash = found if found is not None else (None, None)
        if not await verify_password(password[:MAX_PASSWORD], password_hash) or user is None:
            raise Unauthorized("wrong user name or password", invalid=True)
        return user

    async def exist(self) -> bool:
        """Whether any key (even revoked) or user was ever created: then fleetlog is not open."""
        return await self.keys.count() > 0 or await self.users.count() > 0
