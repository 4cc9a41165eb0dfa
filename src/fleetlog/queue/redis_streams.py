"""RedisStreamQueue: accepted logs go onto sharded Redis Streams, one entry per request.

`put` is one round trip: a script checks the shard's backlog counter, XADDs the whole batch
in the wire format of `records.encode_records`, and adds its logs to the counter — all or
nothing. The stream is never trimmed: entries leave it only once the worker stored them
(see `queue.consumer`). Key names live in `keys.py`.
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError, ResponseError

from fleetlog.errors import Misconfigured, QueueFull, StoreUnavailable
from fleetlog.keys import Keys, shard_of
from fleetlog.metrics import STREAM_BACKLOG
from fleetlog.records import LogRecord, encode_records

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 32
RETRY_AFTER_S = 1.0

# KEYS: stream, backlog. ARGV: limit, logs, payload. Returns the entry id, or nil when full.
ENQUEUE = """
local logs = tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[2]) or '0') + logs > tonumber(ARGV[1]) then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[2], 'b', ARGV[3])
redis.call('INCRBY', KEYS[2], logs)
return id
"""


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Redis errors become `StoreUnavailable`, once, here at the adapter's edge."""
    try:
        yield
    except RedisError as exc:
        log.warning("Redis cannot %s: %s", what, exc)
        raise StoreUnavailable(f"Redis cannot {what}", retry_after=RETRY_AFTER_S) from exc


def connect(url: str, *, socket_timeout: float = SOCKET_TIMEOUT_S) -> Redis:
    """A client whose requests wait for one of a few connections, rather than fail for want.

    Redis runs commands one at a time: past a few dozen connections more only cost, and under
    hundreds of concurrent requests an unbounded-then-failing pool answered 503s.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
    )
    return Redis.from_pool(pool)


async def check_config(client: Redis) -> None:
    """Refuse a Redis that may evict accepted logs; warn when it does not persist them."""
    try:
        config = await client.config_get("*")
    except ResponseError as exc:
        log.warning(
            "cannot read Redis CONFIG (%s): make sure maxmemory-policy is noeviction and "
            "appendonly is yes (docs/durability.md)",
            exc,
        )
        return
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        raise Misconfigured(
            f"Redis maxmemory-policy is {policy}: it may evict logs nobody has stored yet; "
            "set it to noeviction"
        )
    if config.get("appendonly") != "yes":
        log.warning(
            "Redis runs without AOF (appendonly no): a Redis crash loses logs already "
            "acknowledged; see docs/durability.md"
        )
    elif config.get("appendfsync") != "always":
        log.info("Redis AOF fsyncs every second: a machine crash may lose the last second")


class RedisStreamQueue:
    """Queue for Redis mode: `put` returns once Redis has the request's entry.

    Args:
        client: a Redis client (bytes replies).
        keys: the key schema.
        shards: how many streams the logs are spread over.
        max_backlog: logs accepted and not yet stored before `put` refuses (split over shards).
        retry_after: what a refused client is told to wait, in seconds.
    """

    def __init__(
        self,
        client: Redis,
        *,
        keys: Keys,
        shards: int,
        max_backlog: int,
        retry_after: float,
    ) -> None:
        self.client = client
        self.keys = keys
        self.shards = shards
        # The check and the XADD run in one script, which may touch only one shard's keys.
        self.shard_limit = -(-max_backlog // shards)
        self.retry_after = retry_after
        self._enqueue = client.register_script(ENQUEUE)

    async def start(self) -> None:
        with translated("be reached"):
            await check_config(self.client)

    async def put(self, records: Sequence[LogRecord]) -> list[str]:
        shard = shard_of(records[0].device_id, self.shards)
        keys = [self.keys.stream(shard), self.keys.backlog(shard)]
        with translated("accept logs"):
            entry_id = await self._enqueue(
                keys=keys, args=[self.shard_limit, len(records), encode_records(records)]
            )
        if entry_id is None:
            raise QueueFull(
                f"more than {self.shard_limit} logs of this shard are waiting to be stored",
                retry_after=self.retry_after,
            )
        prefix = f"{shard}-{entry_id.decode()}-"
        return [f"{prefix}{position}" for position in range(len(records))]

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
        except RedisError:
            return False

    async def close(self) -> None:
        await self.client.aclose()
