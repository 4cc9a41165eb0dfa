"""People's passwords: argon2id hashes (pwdlib's recommended parameters), checked off the loop."""

import asyncio
from functools import cache

from pwdlib import PasswordHash

MIN_PASSWORD = 8
# argon2 runs over the whole password: a cap keeps one login from costing unbounded CPU.
MAX_PASSWORD = 256

hasher = PasswordHash.recommended()


@cache
def dummy_hash() -> str:
    """A hash to check unknown users against, so their answer takes as long as a known user's."""
    return hasher.hash("fleetlog-no-such-user")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether `password` matches; with no hash, spends the same time and answers False."""
    if password_hash is None:
        await asyncio.to_thread(hasher.verify, password, dummy_hash())
        return False
    return await asyncio.to_thread(hasher.verify, password, password_hash)
