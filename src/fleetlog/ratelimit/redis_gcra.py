"""Rate limits in Redis: one EVALSHA per request, atomic, on Redis's clock, shared by processes."""

import logging
import time

from fleetlog.keys import Keys
from fleetlog.metrics import RATE_LIMIT_ERRORS
from fleetlog.ratelimit import MICROS, Decision, Limit
from fleetlog.redis_client import REDIS_ERRORS, connect

log = logging.getLogger(__name__)

WARN_EVERY_S = 10.0
LIMIT_TIMEOUT_S = 0.5

# KEYS[1] the subject's TAT (microseconds, Redis TIME); ARGV interval_us, burst.
# Answers {allowed, remaining, retry_after_us, reset_after_us}: integers survive Lua -> Redis.
# The step is `decide`'s, line for line; Lua's doubles hold these integers exactly (below 2**53).
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, math.floor((now - allow_at) / interval), 0, math.ceil(new_tat - now)}
"""


class RedisRateLimiter:
    """GCRA in a Lua script. If Redis cannot answer, requests are let through (and logged)."""

    def __init__(self, url: str, *, keys: Keys) -> None:
        # A short timeout: a Redis that stops answering must not hold every request up.
        self.redis = connect(url, socket_timeout=LIMIT_TIMEOUT_S)
        self.keys = keys
        self.script = self.redis.register_script(GCRA)
        self._warned_at = 0.0

    async def hit(self, subject: str, limit: Limit) -> Decision:
        try:
            allowed, remaining, retry_us, reset_us = await self.script(
                keys=[self.keys.rate_limit(subject)], args=[limit.interval_us, limit.burst]
            )
        except REDIS_ERRORS as exc:
            self._warn(exc)
            return Decision(True, limit.burst, 0.0, 0.0)
        return Decision(bool(allowed), int(remaining), retry_us / MICROS, reset_us / MICROS)

    def _warn(self, exc: Exception) -> None:
        RATE_LIMIT_ERRORS.inc()
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate limits not enforced: Redis did not answer (%s)", exc)

    async def close(self) -> None:
        await self.redis.aclose()
