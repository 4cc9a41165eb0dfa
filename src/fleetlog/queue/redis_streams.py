"""RedisStreamQueue: accepted logs go onto sharded Redis Streams, one entry per request.

Requests take the shards in turn, whatever devices they carry: a sender of big mixed batches
(a collector forwarding a whole fleet) spreads over every shard, its master on a Redis Cluster
and its share of the backlog limit, as a fleet of single devices does.

For each request a script checks the shard's backlog counter, XADDs the whole batch in the wire
format of `records.encode_records`, and adds its logs to the counter — all or nothing. Requests
that arrive together travel together: while one call of the script is in flight for a shard,
the requests for that shard wait, then go as the next call's entries (a group enqueue, as the
embedded queue group-commits), so under load a request costs a fraction of a round trip.
The stream is never trimmed: entries leave it only once the worker stored them (see
`queue.consumer`). Key names live in `keys.py`.
"""

import asyncio
import itertools
import logging
import string
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from fleetlog.errors import QueueFull, StoreUnavailable
from fleetlog.idempotency.answers import Mark, shard_of
from fleetlog.keys import Keys
from fleetlog.metrics import STREAM_BACKLOG
from fleetlog.queue.probes import Cached, failed_recently
from fleetlog.queue.redis_config import check_config
from fleetlog.queue.replicated import ReplicatedWrites
from fleetlog.records import MAX_BATCH, LogRecord, encode_records
from fleetlog.redis_client import REDIS_ERRORS, Client
from fleetlog.tracing import traceparent

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0
GROUP_ENTRIES = 128
GROUP_BYTES = 4 * 1024 * 1024

# KEYS: stream, backlog, then the Idempotency-Keys to mark. ARGV: limit, the number of entries,
# (logs, payload) per entry, then per mark: its entry, its key's index in KEYS, the claim's token,
# fingerprint, receive time (epoch µs), TTL (ms) and message id prefix. Traced, each entry
# has a third argument, its request's `traceparent`, XADDed as field `t` (tracing.py).
# Returns per entry its id, or nil when the backlog had no room for it. A key is marked queued
# with its entry's XADD, in one atomic call: applied together or not at all
# (idempotency/answers.py).
ENQUEUE = string.Template("""
local limit = tonumber(ARGV[1])
local entries = tonumber(ARGV[2])
local backlog = tonumber(redis.call('GET', KEYS[2]) or '0')
local ids = {}
for i = 3, 2 + $step * entries, $step do
  local logs = tonumber(ARGV[i])
  if backlog + logs > limit then
    ids[#ids + 1] = false
  else
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'n', ARGV[i], 'b', ARGV[i + 1]$trace)
    backlog = redis.call('INCRBY', KEYS[2], logs)
  end
end
for m = 3 + $step * entries, #ARGV, 7 do
  local entry = tonumber(ARGV[m])
  local key = KEYS[tonumber(ARGV[m + 1])]
  if ids[entry] and (redis.call('HGET', key, 't') == ARGV[m + 2]
      or redis.call('EXISTS', key) == 0) then
    redis.call('DEL', key)
    redis.call('HSET', key, 'f', ARGV[m + 3], 'r', ARGV[m + 4],
      'p', ARGV[m + 6] .. ids[entry] .. '-', 'i', 0, 'n', ARGV[3 + $step * (entry - 1)])
    redis.call('PEXPIRE', key, ARGV[m + 5])
  end
end
return ids
""")
PLAIN = ENQUEUE.substitute(step=2, trace="")
TRACED = ENQUEUE.substitute(step=3, trace=", 't', ARGV[i + 2]")


@dataclass(slots=True)
class Pending:
    """One request's entry, waiting for its shard's next call of the script."""

    logs: int
    payload: bytes
    mark: Mark | None = None
    trace: bytes = b""
    entry_id: asyncio.Future[bytes | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Redis errors become `StoreUnavailable`, once, here at the adapter's edge."""
    try:
        yield
    except REDIS_ERRORS as exc:
        log.warning("Redis cannot %s: %s", what, exc)
        raise StoreUnavailable(f"Redis cannot {what}", retry_after=RETRY_AFTER_S) from exc


async def ensure_group(client: Client, keys: Keys, shard: int) -> None:
    """Create the shard's consumer group (and stream) if missing, reading from the very start.

    Looked for first: a Redis at maxmemory refuses XGROUP CREATE even for a group that exists,
    and a worker must start then to drain it.
    """
    stream = keys.stream(shard)
    with translated("create a consumer group"):
        try:
            groups = await client.xinfo_groups(stream)
        except ResponseError:
            groups = []  # no such stream yet
        if any(group["name"] in (keys.group, keys.group.encode()) for group in groups):
            return
        try:
            await client.xgroup_create(stream, keys.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class RedisStreamQueue:
    """Queue for Redis mode: `put` returns once Redis has the request's entry.

    Args:
        client: a Redis client (bytes replies).
        keys: the key schema.
        shards: how many streams the logs are spread over.
        max_backlog: logs accepted and not yet stored before `put` refuses (split over shards).
        retry_after: what a refused client is told to wait, in seconds.
        memory_high_water: the share of Redis maxmemory past which `writable` says no.
        idempotency_ttl: how long a request's Idempotency-Key is remembered once queued.
        traced: whether each entry carries its request's trace context.
        min_replica_acks: replicas that must have an entry before `put` returns (WAIT).
        replica_ack_timeout: how long `put` waits for them before it refuses.
    """

    def __init__(
        self,
        client: Client,
        *,
        keys: Keys,
        shards: int,
        max_backlog: int,
        retry_after: float,
        memory_high_water: float = 1.0,
        idempotency_ttl: timedelta = timedelta(days=1),
        traced: bool = False,
        min_replica_acks: int = 0,
        replica_ack_timeout: timedelta = timedelta(seconds=1),
    ) -> None:
        self.client = client
        self.idempotency_ms = max(1, int(idempotency_ttl.total_seconds() * 1000))
        self.keys = keys
        self.shards = shards
        # The check and the XADD run in one script, which may touch only one shard's keys.
        self.shard_limit = -(-max_backlog // shards)
        if self.shard_limit < MAX_BATCH:
            log.warning(
                "FLEETLOG_MAX_BACKLOG (%d) over %d shards leaves room for %d logs per shard: "
                "batches larger than that will always be refused with 503",
                max_backlog,
                shards,
                self.shard_limit,
            )
        self.retry_after = retry_after
        self.memory_high_water = memory_high_water
        # Monotonic time of the last failed call of the script; None once a call succeeds.
        self.enqueue_failed_at: float | None = None
        self._memory_headroom = Cached(self._read_memory_headroom)
        self._turns = itertools.cycle(range(shards))
        self.traced = traced
        script = client.register_script(TRACED if traced else PLAIN)
        self._replicated = None
        self._enqueue: Callable[..., Awaitable[Any]] = script
        if min_replica_acks:
            self._replicated = ReplicatedWrites(
                client,
                script,
                replicas=min_replica_acks,
                timeout=replica_ack_timeout,
                retry_after=retry_after,
            )
            self._enqueue = self._replicated.enqueue
        self._waiting: list[list[Pending]] = [[] for _ in range(shards)]
        self._senders: dict[int, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Check Redis, and make every shard's group, so a backlog that fills Redis before
        any worker started never keeps one from reading it."""
        with translated("be reached"):
            await check_config(self.client)
        for shard in range(self.shards):
            await ensure_group(self.client, self.keys, shard)

    async def put(self, records: Sequence[LogRecord], *, mark: Mark | None = None) -> list[str]:
        # A keyed request goes to its key's shard, whose script marks the key with the XADD.
        shard = next(self._turns) if mark is None else shard_of(mark.name, self.shards)
        pending = Pending(len(records), encode_records(records), mark)
        if self.traced:
            pending.trace = traceparent()
        self._waiting[shard].append(pending)
        if shard not in self._senders:
            self._senders[shard] = asyncio.create_task(self._send(shard))
        entry_id = await pending.entry_id
        if entry_id is None:
            raise QueueFull(
                f"more than {self.shard_limit} logs of this shard are waiting to be stored",
                retry_after=self.retry_after,
            )
        prefix = f"{shard}-{entry_id.decode()}-"
        return [f"{prefix}{position}" for position in range(len(records))]

    async def _send(self, shard: int) -> None:
        """Send the shard's waiting entries, one call of the script at a time, until none wait."""
        try:
            while waiting := self._waiting[shard]:
                group = take_group(waiting)
                await self._enqueue_group(shard, group)
        finally:
            del self._senders[shard]

    async def _enqueue_group(self, shard: int, group: list[Pending]) -> None:
        args: list[int | bytes | str] = [self.shard_limit, len(group)]
        for pending in group:
            args += [pending.logs, pending.payload]
            if self.traced:
                args.append(pending.trace)
        keys = [self.keys.stream(shard), self.keys.backlog(shard)]
        for entry, pending in enumerate(group, start=1):
            if pending.mark is not None:
                keys.append(self.keys.request_key(shard, pending.mark.name))
                args += self.mark_args(pending.mark, entry=entry, key=len(keys), shard=shard)
        try:
            with translated("accept logs"):
                entry_ids = await self._enqueue(keys=keys, args=args)
        except StoreUnavailable as exc:
            self.enqueue_failed_at = time.monotonic()
            settle(group, exc)
            return
        except Exception:
            log.exception("enqueue of %d entries failed", len(group))
            self.enqueue_failed_at = time.monotonic()
            settle(group, StoreUnavailable("Redis cannot accept logs", retry_after=RETRY_AFTER_S))
            return
        self.enqueue_failed_at = None
        for pending, entry_id in zip(group, entry_ids, strict=True):
            # A request cancelled while waiting (its client went away) was queued all the same.
            if not pending.entry_id.cancelled():
                pending.entry_id.set_result(entry_id)

    def mark_args(self, mark: Mark, *, entry: int, key: int, shard: int) -> list[int | str]:
        return [
            entry,
            key,
            mark.token,
            mark.fingerprint,
            mark.received_us,
            self.idempotency_ms,
            f"{shard}-",
        ]

    async def ensure_durable(self, name: str) -> None:
        """Wait for the replicas as `put` does, through a write to the key's mark: the mark
        lives in the slot of the entry it was written with, so replicas that have a later
        write to it have the entry. Without replicas to wait for there is nothing to write.

        A mark gone since the claim read it (expired, or lost with its entry in a failover to
        a replica that had neither) leaves the logs to its next retry, which queues them anew.
        """
        if self._replicated is None:
            return
        key = self.keys.request_key(shard_of(name, self.shards), name)
        with translated("wait for its replicas"):
            marked = await self._replicated.expire(key, self.idempotency_ms)
        if not marked:
            raise StoreUnavailable(
                "Redis no longer holds this Idempotency-Key: a retry queues its logs again",
                retry_after=RETRY_AFTER_S,
            )

    async def backlog(self) -> int:
        """Logs accepted and not yet stored, over all shards (also sets the per-shard gauge)."""
        with translated("count the backlog"):
            async with self.client.pipeline(transaction=False) as pipe:
                for shard in range(self.shards):
                    pipe.get(self.keys.backlog(shard))
                counts = [int(value or 0) for value in await pipe.execute()]
        for shard, count in enumerate(counts):
            STREAM_BACKLOG.labels(str(shard)).set(count)
        return sum(counts)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except REDIS_ERRORS:
            return False

    async def writable(self) -> dict[str, bool]:
        """`enqueue`: the last XADD did not fail; `redis_memory`: Redis has room under maxmemory."""
        return {
            "enqueue": not failed_recently(self.enqueue_failed_at),
            "redis_memory": await self._memory_headroom.get(),
        }

    async def _read_memory_headroom(self) -> bool:
        try:
            if isinstance(self.client, RedisCluster):
                infos = await self.client.info("memory", target_nodes=RedisCluster.PRIMARIES)
            else:
                infos = {"redis": await self.client.info("memory")}
        except ResponseError as exc:
            log.warning("cannot read Redis INFO memory (%s): its headroom goes unchecked", exc)
            return True
        except REDIS_ERRORS:
            return False
        return all(has_headroom(info, self.memory_high_water) for info in infos.values())

    async def close(self) -> None:
        if self._replicated is not None:
            await self._replicated.close()
        await self.client.aclose()


def has_headroom(info: dict[str, Any], high_water: float) -> bool:
    """Whether Redis memory (INFO memory) is under `high_water` of maxmemory, or unbounded.

    Whatever the policy, a full queue Redis loses: under noeviction (or volatile-*, as stream
    keys have no TTL) it refuses every write, the worker's included, so the backlog cannot
    drain; under allkeys-* it evicts logs nobody has stored yet.
    """
    limit = int(info.get("maxmemory", 0))
    if limit == 0:
        return True
    used = int(info["used_memory"])
    if used < high_water * limit:
        return True
    log.warning(
        "Redis uses %d of its %d bytes of maxmemory (policy %s): not ready for more logs",
        used,
        limit,
        info.get("maxmemory_policy", "unknown"),
    )
    return False


def settle(group: list[Pending], exc: Exception) -> None:
    for pending in group:
        if not pending.entry_id.cancelled():
            pending.entry_id.set_exception(exc)


def take_group(waiting: list[Pending]) -> list[Pending]:
    """Take the next call's entries off `waiting`: in order, bounded in number and in bytes.

    A bounded call stays quick; were it to time out after Redis ran it, fewer requests would be
    told 503 for entries that are in the stream.
    """
    size = count = 0
    for pending in waiting:
        if count == GROUP_ENTRIES or (count and size + len(pending.payload) > GROUP_BYTES):
            break
        size += len(pending.payload)
        count += 1
    group = waiting[:count]
    del waiting[:count]
    return group
