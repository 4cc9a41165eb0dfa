"""The query cache in Redis: answers tagged with what the worker bumps, so stale ones retire.

The worker INCRs a device's version key and the version key of each event day (UTC) right
after it committed logs of that device or day, and the retention generation right after
retention dropped logs; these keys live in the pipeline's Redis, which never evicts. An answer
is cached under its own key, tagged with the generation and the versions it depends on (a
device's first pages: its version; a search page of a closed time range: the versions of the
days the range covers) read before the database was, and served only while that tag is still
the current one. So once the worker's INCR has run, no cached answer hides a stored log or
shows a dropped one. While Redis takes writes, that is one Redis round trip after the COMMIT
(or DROP). A Redis at maxmemory refuses the INCR (but not the XACK that frees it): the worker
acknowledges all the same and retries the INCR until Redis takes it; if it stops meanwhile,
the next worker to start retires every answer (one INCR of the generation, retried too). Then
the bound is until Redis takes an INCR again and a worker runs, and at most the answers' TTL.

Answers are kept in the cache Redis (FLEETLOG_CACHE_REDIS_URL) if there is one, which may
evict as it likes (e.g. allkeys-lru). Else they share the pipeline's `noeviction` Redis with
the streams, and are bounded so that reads never make ingest fail: none is kept while that
Redis is past MEMORY_SHARE of its maxmemory, and the answers kept in the current and previous
TTL windows (the only ones still alive) add up to at most `max_bytes`. Either way no answer
over `max_answer_bytes` is kept.

A cache that fails is a miss (counted in /metrics), never an error for the client.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import cast

from fleetlog.keys import Keys
from fleetlog.metrics import CACHE_REQUESTS
from fleetlog.redis_client import REDIS_ERRORS, Client

log = logging.getLogger(__name__)

MEMORY_SHARE = 0.5
MEMORY_CHECK_S = 1.0

# KEYS: this window's byte count, the previous window's. ARGV: bytes, max bytes, ttl seconds.
# Returns 1 if the bytes fit (and counts them), 0 if not.
RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
used = used + tonumber(redis.call('GET', KEYS[2]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class QueryCache:
    """Cached answers of GET /api/logs/<device> (per cached limit) and of GET /api/stats.

    Args:
        counters: the pipeline's Redis, where the worker bumps versions and the generation.
        answers: the cache Redis; None to keep answers in `counters`, within the bounds.
        keys: the key schema.
        answers_ttl, stats_ttl: how long answers are kept.
        max_answer_bytes: larger answers are not kept.
        max_bytes: what answers kept in the pipeline's Redis may add up to.
    """

    def __init__(
        self,
        counters: Client,
        answers: Client | None,
        keys: Keys,
        *,
        answers_ttl: timedelta,
        stats_ttl: timedelta,
        max_answer_bytes: int,
        max_bytes: int,
    ) -> None:
        self.counters = counters
        self.answers = answers or counters
        self.shared = answers is None
        self.keys = keys
        self.answers_ttl = max(1, int(answers_ttl.total_seconds()))
        self.stats_ttl = max(1, int(stats_ttl.total_seconds()))
        self.max_answer_bytes = max_answer_bytes
        self.max_bytes = max_bytes
        self._reserve = self.answers.register_script(RESERVE)
        self._memory_checked = -MEMORY_CHECK_S
        self._memory_full = False

    def keeps(self, size: int) -> bool:
        """Whether an answer of `size` bytes may be kept at all."""
        return size <= self.max_answer_bytes

    async def device_logs(self, device_id: str, limit: int) -> tuple[bytes, bytes | None]:
        """The tag of the device's current answers, and its answer cached for `limit`, if any."""
        key = self.keys.cache_answer(device_id, limit)
        return await self._tagged("logs", key, [self.keys.cache_version(device_id)])

    async def keep_device_logs(
        self, device_id: str, limit: int, *, tag: bytes, answer: bytes
    ) -> None:
        """Keep `answer`, read from the database after `tag` was: bounded, see the module."""
        await self._keep("logs", self.keys.cache_answer(device_id, limit), tag=tag, answer=answer)

    async def of_days(
        self, cache: str, digest: str, days: Sequence[str]
    ) -> tuple[bytes, bytes | None]:
        """The tag of an answer over event `days` (a search page, a day's counts), and the
        answer if it is cached; `cache` names it in /metrics."""
        versions = [self.keys.cache_day_version(day) for day in days]
        return await self._tagged(cache, self.keys.cache_of_days(digest), versions)

    async def keep_of_days(self, cache: str, digest: str, *, tag: bytes, answer: bytes) -> None:
        await self._keep(cache, self.keys.cache_of_days(digest), tag=tag, answer=answer)

    async def _tagged(
        self, cache: str, key: str, versions: Sequence[str]
    ) -> tuple[bytes, bytes | None]:
        """The current tag of `versions`, and the answer kept under `key` if its tag is it."""
        try:
            tag, entry = await asyncio.gather(self._tag(versions), self.answers.get(key))
        except REDIS_ERRORS as exc:
            self._failed(cache, exc)
            return b"", None
        stored_tag, _, answer = cast(bytes, entry or b"").partition(b"\n")
        hit = bool(answer) and stored_tag == tag
        CACHE_REQUESTS.labels(cache, "hit" if hit else "miss").inc()
        return tag, answer if hit else None

    async def _keep(self, cache: str, key: str, *, tag: bytes, answer: bytes) -> None:
        if not tag or not self.keeps(len(answer)):
            return
        try:
            if self.shared and not await self._room_for(len(answer)):
                return
            await self.answers.set(key, tag + b"\n" + answer, ex=self.answers_ttl)
        except REDIS_ERRORS as exc:
            self._failed(cache, exc)

    async def stats(self) -> bytes | None:
        try:
            answer = cast(bytes | None, await self.answers.get(self.keys.cache_stats()))
        except REDIS_ERRORS as exc:
            self._failed("stats", exc)
            return None
        CACHE_REQUESTS.labels("stats", "hit" if answer else "miss").inc()
        return answer

    async def keep_stats(self, answer: bytes) -> None:
        try:
            if self.shared and not await self._room_for(len(answer)):
                return
            await self.answers.set(self.keys.cache_stats(), answer, ex=self.stats_ttl)
        except REDIS_ERRORS as exc:
            self._failed("stats", exc)

    async def _tag(self, versions: Sequence[str]) -> bytes:
        """`<generation>.<version>…`: what answers read now must be tagged with."""
        async with self.counters.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.cache_generation())
            for version in versions:
                pipe.get(version)
            values = await pipe.execute()
        return b".".join(value or b"0" for value in values)

    async def _room_for(self, size: int) -> bool:
        """Whether the pipeline's Redis has room for `size` more bytes of answers; counts them."""
        if time.monotonic() - self._memory_checked >= MEMORY_CHECK_S:
            memory = await self.answers.info("memory")
            limit = int(memory.get("maxmemory", 0))
            self._memory_full = limit > 0 and memory["used_memory"] > limit * MEMORY_SHARE
            self._memory_checked = time.monotonic()
        if self._memory_full:
            return False
        window = int(time.time()) // self.answers_ttl
        keys = [self.keys.cache_bytes(window), self.keys.cache_bytes(window - 1)]
        args = [size, self.max_bytes, 2 * self.answers_ttl]
        return bool(await self._reserve(keys=keys, args=args))

    def _failed(self, cache: str, exc: Exception) -> None:
        CACHE_REQUESTS.labels(cache, "error").inc()
        log.warning("query cache unavailable, answering from the database: %s", exc)
