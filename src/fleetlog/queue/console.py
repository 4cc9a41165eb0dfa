"""QueueConsole: the state of the Redis pipeline, per shard, as an operator asks for it.

Every number is read from Redis alone, so it is the same from any API process, the CLI or a
worker, and needs neither the API nor PostgreSQL up.

Logs stored per second, across every worker process and at next to no cost on the hot path:
the script that acknowledges stored entries, which runs for every batch anyway, adds the logs
it frees to the shard's stored total (one INCRBY inside a call already made). Each worker's
reclaim tick (every `claim_idle` / 2) pushes a sample `<Redis ms> <total>` onto a short capped
list. The rate is the total now against the newest sample at least RATE_WINDOW_MS old (else the
oldest kept), both timed by Redis's clock: no process's clock or memory is trusted, and once
every worker is gone the rate falls to 0, instead of showing the last rate a worker saw.
"""

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from redis.exceptions import ResponseError

from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import translated
from fleetlog.redis_client import Client

NO_QUEUE = (
    "embedded fleetlog commits each request before answering it: it has no queue backlog, "
    "consumers or dead letters (the console needs FLEETLOG_REDIS_URL and FLEETLOG_DATABASE_URL)"
)
RATE_WINDOW_MS = 60_000
MIN_RATE_SPAN_MS = 1_000
SAMPLES_KEPT = 64
READS = 7  # commands per shard in a status read

# KEYS: stored total, samples. ARGV: how many samples to keep.
SAMPLE_STORED = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('LPUSH', KEYS[2], string.format('%d %d', ms, total))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
"""

# KEYS: stream. ARGV: group, min idle ms, a consumer to keep (the caller). Removes consumers
# idle that long that hold no entry, checked and removed in one step: a consumer that read an
# entry meanwhile keeps it (DELCONSUMER would drop its pending entries from the group).
REMOVE_IDLE = """
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local fields = {}
  for i = 1, #consumer, 2 do
    fields[consumer[i]] = consumer[i + 1]
  end
  if fields['pending'] == 0 and fields['idle'] >= tonumber(ARGV[2])
      and fields['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
    removed[#removed + 1] = fields['name']
  end
end
return removed
"""


class ConsumerOut(BaseModel):
    name: str
    pending: int = Field(description="Entries it read and has not acknowledged")
    idle_s: float = Field(description="Seconds since it last asked for entries")


class ShardOut(BaseModel):
    shard: int
    backlog: int = Field(description="Logs accepted and not yet stored")
    pending: int = Field(description="Entries read by a worker and not yet acknowledged")
    oldest_entry_age_s: float = Field(
        description="Age of the oldest entry not yet acknowledged (pending or undelivered)"
    )
    dead_letters: int = Field(description="Entries in the shard's dead-letter stream")
    stored_total: int = Field(description="Logs acknowledged as stored from this shard, ever")
    stored_per_s: float | None = Field(
        description="Logs stored per second lately; null before a worker sampled it"
    )
    consumers: list[ConsumerOut]


class QueueOut(BaseModel):
    backlog: int
    pending: int
    oldest_entry_age_s: float
    dead_letters: int
    stored_per_s: float | None
    shards: list[ShardOut]

    @classmethod
    def of(cls, shards: list[ShardOut]) -> "QueueOut":
        rates = [shard.stored_per_s for shard in shards if shard.stored_per_s is not None]
        return cls(
            backlog=sum(shard.backlog for shard in shards),
            pending=sum(shard.pending for shard in shards),
            oldest_entry_age_s=max((shard.oldest_entry_age_s for shard in shards), default=0.0),
            dead_letters=sum(shard.dead_letters for shard in shards),
            stored_per_s=sum(rates) if rates else None,
            shards=shards,
        )


def stored_rate(samples: Sequence[bytes], *, now_ms: int, total: int) -> float | None:
    """Logs/s from the samples (newest first) to `total` at `now_ms`; None if none is old
    enough to tell."""
    points = [tuple(int(part) for part in sample.split()) for sample in samples]
    old = [point for point in points if now_ms - point[0] >= RATE_WINDOW_MS]
    base = old[0] if old else (points[-1] if points else None)
    if base is None or now_ms - base[0] < MIN_RATE_SPAN_MS:
        return None
    return max(0, total - base[1]) * 1000 / (now_ms - base[0])


def entry_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


def text(value: object) -> str:
    """A reply of a bytes client as text."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class QueueConsole:
    """Reads each shard's state; the workers also sample and tidy it on their reclaim tick.

    Args:
        client: a Redis client (bytes replies).
        keys: the key schema.
        shards: how many shard streams there are.
    """

    def __init__(self, client: Client, *, keys: Keys, shards: int) -> None:
        self.client = client
        self.keys = keys
        self.shards = shards
        self._sample = client.register_script(SAMPLE_STORED)
        self._remove_idle = client.register_script(REMOVE_IDLE)

    async def status(self) -> QueueOut:
        return QueueOut.of(await self._read(range(self.shards)))

    async def shard(self, shard: int) -> ShardOut:
        [status] = await self._read([shard])
        return status

    async def _read(self, shards: Sequence[int]) -> list[ShardOut]:
        """The shards' numbers, read in one round trip after Redis's clock (which a cluster
        pipeline, sending each command to its key's master, cannot carry)."""
        with translated("read the queue's status"):
            clock = await self.client.time()
            async with self.client.pipeline(transaction=False) as pipe:
                for shard in shards:
                    stream = self.keys.stream(shard)
                    pipe.get(self.keys.backlog(shard))
                    pipe.xpending(stream, self.keys.group)
                    pipe.xrange(stream, count=1)
                    pipe.xlen(self.keys.dead(shard))
                    pipe.get(self.keys.stored(shard))
                    pipe.lrange(self.keys.stored_samples(shard), 0, -1)
                    pipe.xinfo_consumers(stream, self.keys.group)
                replies = await pipe.execute(raise_on_error=False)
            for reply in replies:
                if isinstance(reply, Exception) and not is_no_group(reply):
                    raise reply
        now_ms = clock[0] * 1000 + clock[1] // 1000
        return [
            shard_of(shard, replies[i * READS : (i + 1) * READS], now_ms=now_ms)
            for i, shard in enumerate(shards)
        ]

    async def sample_stored(self, shard: int) -> None:
        keys = [self.keys.stored(shard), self.keys.stored_samples(shard)]
        with translated("sample the stored total"):
            await self._sample(keys=keys, args=[SAMPLES_KEPT])

    async def remove_idle_consumers(self, shard: int, *, idle_ms: int, keep: str) -> list[str]:
        """Remove the consumers (of dead workers) idle `idle_ms` that hold no entry."""
        with translated("remove idle consumers"):
            removed = await self._remove_idle(
                keys=[self.keys.stream(shard)], args=[self.keys.group, idle_ms, keep]
            )
        return [text(name) for name in removed]


def shard_of(shard: int, replies: list[Any], *, now_ms: int) -> ShardOut:
    """A shard's numbers from its READS replies, at Redis time `now_ms`."""
    backlog, pending, first, dead, stored, samples, consumers = replies
    total = int(stored or 0)
    return ShardOut(
        shard=shard,
        backlog=int(backlog or 0),
        pending=0 if is_no_group(pending) else int(pending["pending"]),
        oldest_entry_age_s=max(0, now_ms - entry_ms(first[0][0])) / 1000 if first else 0.0,
        dead_letters=int(dead),
        stored_total=total,
        stored_per_s=stored_rate(samples, now_ms=now_ms, total=total),
        consumers=[] if is_no_group(consumers) else consumers_of(consumers),
    )


def is_no_group(reply: object) -> bool:
    """A shard whose stream or group no worker nor API process has made yet."""
    return isinstance(reply, ResponseError) and (
        "NOGROUP" in str(reply) or "no such key" in str(reply)
    )


def consumers_of(reply: list[dict[str, Any]]) -> list[ConsumerOut]:
    return [
        ConsumerOut(
            name=text(consumer["name"]),
            pending=int(consumer["pending"]),
            idle_s=int(consumer["idle"]) / 1000,
        )
        for consumer in reply
    ]
