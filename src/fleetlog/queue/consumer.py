"""StreamConsumer: the worker's side of the shard streams, one consumer group per shard.

Entries are read with XREADGROUP, reclaimed from dead consumers with XAUTOCLAIM, and once
stored acknowledged *and deleted* in one script that also lowers the shard's backlog counter
(so memory stays bounded and the counter always matches the stream). A dead letter moves an
entry to the shard's dead-letter stream the same way, atomically.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import ensure_group, translated
from fleetlog.redis_client import Client, routed

# KEYS: stream, backlog, stored total. ARGV: group, then (entry id, logs) pairs. Returns the
# logs freed, which are added to the shard's stored total (see `queue.console`).
ACKNOWLEDGE = """
local freed = 0
for i = 2, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    freed = freed + tonumber(ARGV[i + 1])
  end
end
if freed > 0 then
  redis.call('DECRBY', KEYS[2], freed)
  redis.call('INCRBY', KEYS[3], freed)
end
return freed
"""

# KEYS: stream, backlog, dead. ARGV: group, entry id, logs, payload, error, deliveries, reason.
# Returns 0 when the entry is gone already (another worker stored it).
DEAD_LETTER = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[3], '*', 'id', ARGV[2], 'error', ARGV[5], 'deliveries', ARGV[6],
  'reason', ARGV[7], 'n', ARGV[3], 'b', ARGV[4])
redis.call('DECRBY', KEYS[2], ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One accepted request as read from a shard's stream."""

    shard: int
    id: str
    logs: int
    payload: bytes
    deliveries: int
    # The `traceparent` of the request that queued it; empty when tracing was off (tracing.py).
    trace: bytes = b""


def parse_entry(
    shard: int, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int
) -> StreamEntry:
    count = fields.get(b"n", b"0")
    return StreamEntry(
        shard=shard,
        id=entry_id.decode(),
        logs=int(count) if count.isdigit() else 0,
        payload=fields.get(b"b", b""),
        deliveries=deliveries,
        trace=fields.get(b"t", b""),
    )


class StreamConsumer:
    """One worker's consumer in every shard's group.

    Args:
        client: a Redis client (bytes replies) whose socket timeout exceeds `block_ms`.
        keys: the key schema.
        shards: how many shard streams there are.
        name: this consumer's name, unique among live workers.
    """

    def __init__(self, client: Client, *, keys: Keys, shards: int, name: str) -> None:
        self.client = client
        self.keys = keys
        self.shards = shards
        self.name = name
        self._acknowledge = client.register_script(ACKNOWLEDGE)
        self._dead_letter = client.register_script(DEAD_LETTER)

    async def ensure_group(self, shard: int) -> None:
        await ensure_group(self.client, self.keys, shard)

    async def read(self, shard: int, *, count: int, block_ms: int | None) -> list[StreamEntry]:
        """New entries for this consumer, waiting up to `block_ms` for the first (None: not
        waiting)."""
        stream = self.keys.stream(shard)
        command: list[str | int] = ["XREADGROUP", "GROUP", self.keys.group, self.name]
        command += ["COUNT", count]
        if block_ms is not None:
            command += ["BLOCK", block_ms]
        command += ["STREAMS", stream, ">"]
        with translated("read the stream"):
            try:
                reply: Any = await self.client.execute_command(
                    *command, **routed(self.client, stream)
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self.ensure_group(shard)
                return []
        return [
            parse_entry(shard, entry_id, fields, 1)
            for _, entries in reply or ()
            for entry_id, fields in entries
        ]

    async def reclaim(self, shard: int, *, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Take over entries pending longer than `min_idle_ms` (their consumer is gone)."""
        stream = self.keys.stream(shard)
        with translated("reclaim pending entries"):
            claim: Any = await self.client.xautoclaim(
                stream, self.keys.group, self.name, min_idle_ms, "0-0", count=count
            )
            claimed = claim[1]
            if not claimed:
                return []
            pending = await self.client.xpending_range(
                stream,
                self.keys.group,
                min=claimed[0][0],
                max=claimed[-1][0],
                count=len(claimed),
                consumername=self.name,
            )
        deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
        return [
            parse_entry(shard, entry_id, fields, deliveries.get(entry_id, 1))
            for entry_id, fields in claimed
        ]

    async def hold(self, entries: Sequence[StreamEntry]) -> list[StreamEntry]:
        """Reset the idle time of entries this consumer still works on, without counting a
        delivery (XCLAIM JUSTID): other workers must not reclaim a batch held through an outage.

        Returns the entries still pending, in order: one another worker stored and acknowledged
        meanwhile is gone from the group, and must not be stored again.
        """
        held: set[tuple[int, str]] = set()
        for shard in {entry.shard for entry in entries}:
            ids: list[Any] = [entry.id for entry in entries if entry.shard == shard]
            with translated("hold pending entries"):
                claimed: Any = await self.client.xclaim(
                    self.keys.stream(shard), self.keys.group, self.name, 0, ids, justid=True
                )
            held.update((shard, entry_id.decode()) for entry_id in claimed)
        return [entry for entry in entries if (entry.shard, entry.id) in held]

    async def acknowledge(self, shard: int, entries: Sequence[StreamEntry]) -> int:
        """Acknowledge and delete stored entries in one round trip; returns the logs freed."""
        if not entries:
            return 0
        args: list[str | int] = [self.keys.group]
        for entry in entries:
            args += [entry.id, entry.logs]
        keys = [self.keys.stream(shard), self.keys.backlog(shard), self.keys.stored(shard)]
        with translated("acknowledge entries"):
            return int(await self._acknowledge(keys=keys, args=args))

    async def dead_letter(self, entry: StreamEntry, error: str, *, reason: str) -> bool:
        """Move the entry to its shard's dead-letter stream; False if it was stored meanwhile."""
        keys = [
            self.keys.stream(entry.shard),
            self.keys.backlog(entry.shard),
            self.keys.dead(entry.shard),
        ]
        args: list[str | int | bytes] = [
            self.keys.group,
            entry.id,
            entry.logs,
            entry.payload,
            error,
            entry.deliveries,
            reason,
        ]
        with translated("dead-letter an entry"):
            return bool(await self._dead_letter(keys=keys, args=args))

    async def first_deliverable(self, shard: int) -> tuple[int, int]:
        """The id (ms, seq) below which no entry of the shard can be delivered again: its first
        entry's, or past the last one's when the stream is empty (ids only ever grow)."""
        with translated("read the stream's first entry"):
            info: Any = await self.client.xinfo_stream(self.keys.stream(shard))
        if info["first-entry"]:
            ms, seq = info["first-entry"][0].split(b"-")
            return int(ms), int(seq)
        ms, seq = info["last-generated-id"].split(b"-")
        return int(ms), int(seq) + 1

    async def bump_cache_versions(self, device_ids: Iterable[str], days: Iterable[str]) -> None:
        """INCR the cache version key of each device and each event day, in one round trip:
        answers cached before of those devices, and search pages and counts of those days,
        are stale now."""
        with translated("bump cache versions"):
            async with self.client.pipeline(transaction=False) as pipe:
                for device_id in device_ids:
                    pipe.incr(self.keys.cache_version(device_id))
                for day in days:
                    pipe.incr(self.keys.cache_day_version(day))
                await pipe.execute()

    async def bump_cache_generation(self) -> None:
        """INCR the retention generation: every answer cached before is stale now."""
        with translated("bump the cache generation"):
            await self.client.incr(self.keys.cache_generation())

    async def close(self) -> None:
        await self.client.aclose()
