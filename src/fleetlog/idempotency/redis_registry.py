"""Idempotency keys in Redis, for the pipeline: one string per key, under `Keys.idempotency`.

A key holds the token of the request storing its record (expiring after the pending TTL), then
`s` once stored (expiring after the TTL). Each script touches one key, so that the keys of a
request may live on any node of a Redis Cluster; a request's keys go in one round trip.
"""

import asyncio
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from redis.asyncio.cluster import RedisCluster

from fleetlog.idempotency import PENDING_TTL, Claim, Seen, digest, new_token
from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import translated
from fleetlog.redis_client import Client

STORED = b"s"
# The holder of a free key becomes this request; else the holder is answered.
CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
# Stored, unless another request claimed the key since this one's claim expired.
CONFIRM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 's', 'PX', ARGV[2])
return 1
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def milliseconds(duration: timedelta) -> int:
    return max(1, int(duration.total_seconds() * 1000))


class RedisRegistry:
    def __init__(
        self,
        redis: Client,
        *,
        keys: Keys,
        ttl: timedelta,
        pending_ttl: timedelta = PENDING_TTL,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_ms = milliseconds(ttl)
        self.pending_ms = milliseconds(min(pending_ttl, ttl))
        self.claim_script = redis.register_script(CLAIM)
        self.confirm_script = redis.register_script(CONFIRM)
        self.release_script = redis.register_script(RELEASE)

    async def claim(self, keys: Collection[str]) -> Claim:
        token = new_token()
        holders = await self.run(self.claim_script, keys, token, self.pending_ms, "claim keys")
        seen = {
            key: Seen.NEW if holder is None else Seen.STORED if holder == STORED else Seen.IN_FLIGHT
            for key, holder in zip(keys, holders, strict=True)
        }
        return Claim(token, seen)

    async def confirm(self, claim: Claim, keys: Sequence[str]) -> None:
        await self.run(self.confirm_script, keys, claim.token, self.ttl_ms, "confirm keys")

    async def release(self, claim: Claim, keys: Sequence[str]) -> None:
        await self.run(self.release_script, keys, claim.token, None, "release keys")

    async def run(
        self, script: Any, keys: Collection[str], token: str, ttl_ms: int | None, what: str
    ) -> list[Any]:
        """The script on every key, in one round trip; Redis errors are StoreUnavailable.

        A cluster pipeline cannot carry scripts: there each key's call goes to its own master,
        all at once."""
        if not keys:
            return []
        args = [token] if ttl_ms is None else [token, ttl_ms]
        names = [self.keys.idempotency(digest(key)) for key in keys]
        with translated(what):
            if isinstance(self.redis, RedisCluster):
                calls = (script(keys=[name], args=args) for name in names)
                return list(await asyncio.gather(*calls))
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    await script(keys=[name], args=args, client=pipe)
                return list(await pipe.execute())
