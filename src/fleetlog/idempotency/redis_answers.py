"""Request keys in Redis, for the pipeline: a hash per key, `Keys.request_key(shard, name)`.

A key lives under the hash tag of the shard its request's entry goes to (`answers.shard_of`),
so that the enqueue script marks it queued in the same call as its XADD (queue/redis_streams.py),
on a Redis Cluster too. Fields: `t` the pending claim's token, `f` the fingerprint; once queued
`r` (receive time, epoch µs), `p`, `i`, `n` (message ids); once answered `s`, `h`, `b`.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fleetlog.idempotency import new_token
from fleetlog.idempotency.answers import PENDING_TTL, Answer, Found, Queued, Ticket, shard_of
from fleetlog.idempotency.redis_registry import milliseconds
from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import translated
from fleetlog.redis_client import Client

# ARGV: token, fingerprint, pending ms. A free key is claimed (nil); else its fields.
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 't', ARGV[1], 'f', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return false
end
return redis.call('HGETALL', KEYS[1])
"""
# ARGV: fingerprint, status, headers, body, ttl ms. Only a queued key of this request.
ANSWER = """
if redis.call('HEXISTS', KEYS[1], 'p') == 0 or redis.call('HGET', KEYS[1], 'f') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 's', ARGV[2], 'h', ARGV[3], 'b', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""
RELEASE = """
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def from_micros(value: bytes) -> datetime:
    return datetime.fromtimestamp(int(value) / 1_000_000, UTC)


class RedisAnswers:
    def __init__(
        self,
        redis: Client,
        *,
        keys: Keys,
        shards: int,
        ttl: timedelta,
        pending_ttl: timedelta = PENDING_TTL,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.shards = shards
        self.ttl_ms = milliseconds(ttl)
        self.pending_ms = milliseconds(min(pending_ttl, ttl))
        self.claim_script = redis.register_script(CLAIM)
        self.answer_script = redis.register_script(ANSWER)
        self.release_script = redis.register_script(RELEASE)

    def key(self, name: str) -> str:
        return self.keys.request_key(shard_of(name, self.shards), name)

    async def claim(self, name: str, fingerprint: str) -> Ticket:
        token = new_token()
        with translated("claim an idempotency key"):
            held = await self.claim_script(
                keys=[self.key(name)], args=[token, fingerprint, self.pending_ms]
            )
        if held is None:
            return Ticket(name, token, fingerprint, Found.NEW)
        return ticket_of(name, token, fingerprint, dict(zip(held[::2], held[1::2], strict=True)))

    async def answer(self, ticket: Ticket, answer: Answer) -> None:
        headers = orjson.dumps([list(pair) for pair in answer.headers])
        args: list[str | int | bytes] = [
            ticket.fingerprint,
            answer.status,
            headers,
            answer.body,
            self.ttl_ms,
        ]
        with translated("keep an answer"):
            await self.answer_script(keys=[self.key(ticket.name)], args=args)

    async def release(self, ticket: Ticket) -> None:
        with translated("release an idempotency key"):
            await self.release_script(keys=[self.key(ticket.name)], args=[ticket.token])


def ticket_of(name: str, token: str, fingerprint: str, fields: dict[Any, bytes]) -> Ticket:
    """What a claim found of a key held before: by another request, in flight, or done."""
    if fields.get(b"f", b"").decode() != fingerprint:
        return Ticket(name, token, fingerprint, Found.OTHER_REQUEST)
    if b"p" not in fields:
        return Ticket(name, token, fingerprint, Found.IN_FLIGHT)
    queued = Queued(
        from_micros(fields[b"r"]), fields[b"p"].decode(), int(fields[b"i"]), int(fields[b"n"])
    )
    if b"s" not in fields:
        return Ticket(name, token, fingerprint, Found.QUEUED, queued=queued)
    headers = [(key, value) for key, value in orjson.loads(fields[b"h"])]
    answer = Answer(int(fields[b"s"]), headers, fields[b"b"])
    return Ticket(name, token, fingerprint, Found.ANSWERED, queued=queued, answer=answer)
