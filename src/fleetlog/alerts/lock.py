"""One alert evaluator at a time: a Redis lock that hands out a fencing token.

Taking the lock INCRs the fence counter and keeps `<owner> <token>` under the lock key for
`ttl`; the holder renews it each round. A holder that stalls past the TTL loses the lock
without knowing it; its token then stays behind the next holder's, and the store refuses its
writes (ledger.py). Should Redis lose the counter (no AOF), the store's token is ahead: the
counter is raised past it and the lock taken anew (`raise_past`).
"""

from datetime import timedelta

from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import translated
from fleetlog.redis_client import Client

ACQUIRE = """
local held = redis.call('get', KEYS[1])
if held then
  local owner, token = string.match(held, '^(.*) (%d+)$')
  if owner == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return token
"""
RELEASE = """
local held = redis.call('get', KEYS[1])
if held and string.match(held, '^(.*) %d+$') == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
RAISE = """
local token = tonumber(redis.call('get', KEYS[1]) or '0')
if token < tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1]) end
return 1
"""


class FencedLock:
    """The evaluator's lock, held by `owner`; `acquire` also renews."""

    def __init__(self, redis: Client, *, keys: Keys, owner: str, ttl: timedelta) -> None:
        self.redis = redis
        self.keys = (keys.alert_lock(), keys.alert_fence())
        self.owner = owner
        self.ttl_ms = max(1, int(ttl.total_seconds() * 1000))

    async def acquire(self) -> int | None:
        """This owner's fencing token if it holds the lock now (taken or renewed), else None."""
        with translated("hand out the alert lock"):
            token = await self.redis.eval(ACQUIRE, 2, *self.keys, self.owner, self.ttl_ms)
        return int(token) or None

    async def release(self) -> None:
        with translated("release the alert lock"):
            await self.redis.eval(RELEASE, 1, self.keys[0], self.owner)

    async def raise_past(self, token: int) -> None:
        """Hand out tokens above `token` from now on, and give up the lock to take it anew."""
        with translated("raise the fencing token"):
            await self.redis.eval(RAISE, 1, self.keys[1], token + 1)
        await self.release()
