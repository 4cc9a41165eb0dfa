"""The query cache in Redis: answers keyed by the device's version, so new logs retire them.

The worker INCRs a device's version key right after it committed that device's logs. An answer
is cached under the version that was current before the database was read, and only while that
version is still current; a reader always looks under the current version. So once the
worker's INCR has run, no cached answer can hide a stored log: the bound on staleness is the
time between the worker's COMMIT and its INCR, one Redis round trip.

A cache that fails is a miss (counted in /metrics), never an error for the client.
"""

import logging
from datetime import timedelta
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from fleetlog.keys import Keys
from fleetlog.metrics import CACHE_REQUESTS

log = logging.getLogger(__name__)

# KEYS: version, answers. ARGV: limit. Returns {version, answer or false}.
READ_DEVICE = """
local version = redis.call('GET', KEYS[1]) or '0'
return {version, redis.call('HGET', KEYS[2], version .. ':' .. ARGV[1])}
"""

# KEYS: version, answers. ARGV: version read before the query, limit, answer, ttl seconds.
# Answers of older versions are dropped with the hash, so it holds one version's answers.
WRITE_DEVICE = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then
  return 0
end
if redis.call('HGET', KEYS[2], 'version') ~= ARGV[1] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'version', ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


class QueryCache:
    def __init__(
        self, client: Redis, keys: Keys, *, answers_ttl: timedelta, stats_ttl: timedelta
    ) -> None:
        self.client = client
        self.keys = keys
        self.answers_ttl = max(1, int(answers_ttl.total_seconds()))
        self.stats_ttl = max(1, int(stats_ttl.total_seconds()))
        self._read_device = client.register_script(READ_DEVICE)
        self._write_device = client.register_script(WRITE_DEVICE)

    async def device_logs(self, device_id: str, limit: int) -> tuple[bytes, bytes | None]:
        """The device's current version, and the answer cached under it for `limit`, if any."""
        keys = [self.keys.cache_version(device_id), self.keys.cache_answers(device_id)]
        try:
            version, answer = await self._read_device(keys=keys, args=[limit])
        except RedisError as exc:
            self._failed("logs", exc)
            return b"", None
        CACHE_REQUESTS.labels("logs", "hit" if answer else "miss").inc()
        return version, answer or None

    async def keep_device_logs(
        self, device_id: str, limit: int, *, version: bytes, answer: bytes
    ) -> None:
        if not version:
            return
        keys = [self.keys.cache_version(device_id), self.keys.cache_answers(device_id)]
        try:
            await self._write_device(keys=keys, args=[version, limit, answer, self.answers_ttl])
        except RedisError as exc:
            self._failed("logs", exc)

    async def stats(self) -> bytes | None:
        try:
            answer = cast(bytes | None, await self.client.get(self.keys.cache_stats()))
        except RedisError as exc:
            self._failed("stats", exc)
            return None
        CACHE_REQUESTS.labels("stats", "hit" if answer else "miss").inc()
        return answer

    async def keep_stats(self, answer: bytes) -> None:
        try:
            await self.client.set(self.keys.cache_stats(), answer, ex=self.stats_ttl)
        except RedisError as exc:
            self._failed("stats", exc)

    def _failed(self, cache: str, exc: RedisError) -> None:
        CACHE_REQUESTS.labels(cache, "error").inc()
        log.warning("query cache unavailable, answering from the database: %s", exc)
