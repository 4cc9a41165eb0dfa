"""Every Lua script of fleetlog runs on a real Redis Cluster, each call on keys of one slot.

The components are built on a cluster client and each script is run through the component's
own method. The cluster refuses a script whose keys span slots (redis-py before sending it,
Redis with CROSSSLOT); the test also records the KEYS of every call and checks their slots
itself, and that no registered script went unrun.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from fleetlog.alerts.lock import FencedLock
from fleetlog.cache import QueryCache
from fleetlog.errors import Misconfigured
from fleetlog.idempotency.answers import Answer, Mark
from fleetlog.idempotency.redis_answers import RedisAnswers
from fleetlog.idempotency.redis_registry import RedisRegistry
from fleetlog.keys import Keys
from fleetlog.queue.console import QueueConsole
from fleetlog.queue.consumer import StreamConsumer
from fleetlog.queue.dead_letters import DeadLetters
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.ratelimit import Limit
from fleetlog.ratelimit.redis_gcra import RedisRateLimiter
from fleetlog.redis_client import connect
from tests.fixtures.pipeline import make_record

pytestmark = pytest.mark.cluster

KEYS = Keys()
SHARDS = 4


class ScriptCalls:
    """The scripts registered while it is installed, and the KEYS of each call of them."""

    def __init__(self) -> None:
        self.registered: set[str] = set()
        self.calls: list[tuple[str, list[Any]]] = []

    def slots_of_calls(self) -> list[set[int]]:
        return [{key_slot(str(key).encode()) for key in keys} for _, keys in self.calls]

    def unrun(self) -> set[str]:
        return self.registered - {script for script, _ in self.calls}


@pytest.fixture
def script_calls(monkeypatch: pytest.MonkeyPatch) -> ScriptCalls:
    """A spy on redis-py's AsyncScript: each call still goes to the real cluster."""
    calls = ScriptCalls()
    register, call = AsyncScript.__init__, AsyncScript.__call__

    def registered(self: AsyncScript, client: Any, script: Any) -> None:
        register(self, client, script)
        calls.registered.add(str(script))

    async def called(self: AsyncScript, keys: Sequence[Any] = (), **kwargs: Any) -> Any:
        calls.calls.append((str(self.script), list(keys)))
        return await call(self, keys=keys, **kwargs)

    monkeypatch.setattr(AsyncScript, "__init__", registered)
    monkeypatch.setattr(AsyncScript, "__call__", called)
    return calls


async def test_every_script_runs_on_the_cluster_with_keys_of_one_slot(
    cluster_url: str, script_calls: ScriptCalls
) -> None:
    client = connect(cluster_url, cluster=True)
    assert isinstance(client, RedisCluster)
    try:
        for traced in (False, True):
            queue = RedisStreamQueue(
                client, keys=KEYS, shards=SHARDS, max_backlog=10_000, retry_after=1.0, traced=traced
            )
            await queue.start()
            await run_queue_scripts(client, queue)
            assert await queue.writable() == {"enqueue": True, "redis_memory": True}
        await run_idempotency_scripts(client)
        await run_cache_and_lock_scripts(client)
        limiter = RedisRateLimiter(cluster_url, keys=KEYS)
        try:
            assert (await limiter.hit("key:k1", Limit(rate=10, burst=5))).allowed
        finally:
            await limiter.close()
    finally:
        await client.aclose()

    # The queue's two enqueue scripts and six others, three scripts each for the two kinds of
    # idempotency keys, the cache's and the rate limiter's: the lock's are sent with EVAL.
    assert len(script_calls.registered) >= 16
    assert all(len(slots) == 1 for slots in script_calls.slots_of_calls())
    assert not script_calls.unrun()


async def test_a_cluster_node_opened_as_a_standalone_redis_is_refused(cluster_url: str) -> None:
    queue = RedisStreamQueue(
        Redis.from_url(cluster_url), keys=KEYS, shards=SHARDS, max_backlog=1000, retry_after=1.0
    )
    try:
        with pytest.raises(Misconfigured, match="FLEETLOG_REDIS_CLUSTER=1"):
            await queue.start()
    finally:
        await queue.close()


async def run_queue_scripts(client: RedisCluster, queue: RedisStreamQueue) -> None:
    """Enqueue (with an Idempotency-Key's mark), deliver, dead-letter, replay, acknowledge."""
    mark = Mark("req-1", "token-1", "fingerprint", datetime.now(UTC))
    for shard in range(SHARDS):
        await queue.put([make_record(message=f"shard {shard}")])
    await queue.put([make_record()], mark=mark)
    consumer = StreamConsumer(client, keys=KEYS, shards=SHARDS, name="c1")
    dead_letters = DeadLetters(client, keys=KEYS, shards=SHARDS)
    console = QueueConsole(client, keys=KEYS, shards=SHARDS)
    for shard in range(SHARDS):
        entries = await consumer.read(shard, count=10, block_ms=10)
        assert entries
        assert await consumer.dead_letter(entries[0], "boom", reason="undecodable")
        dead = (await dead_letters.oldest(limit=1)).entries[0].id
        assert (await dead_letters.replay([dead])).replayed
        replayed = await consumer.read(shard, count=10, block_ms=10)
        assert await consumer.acknowledge(shard, [*entries[1:], *replayed]) == len(entries)
        await console.sample_stored(shard)
        await console.remove_idle_consumers(shard, idle_ms=0, keep="c1")
    assert (await console.status()).model_dump()
    assert await dead_letters.purge() == 0


async def run_idempotency_scripts(client: RedisCluster) -> None:
    registry = RedisRegistry(client, keys=KEYS, ttl=timedelta(minutes=1))
    claim = await registry.claim([f"doc-{i}" for i in range(8)])
    await registry.confirm(claim, claim.new()[:4])
    await registry.release(claim, claim.new()[4:])
    answers = RedisAnswers(client, keys=KEYS, shards=SHARDS, ttl=timedelta(minutes=1))
    for name in ("a", "b"):
        ticket = await answers.claim(name, "fingerprint")
        await answers.answer(ticket, Answer(202, [], b"{}"))
        await answers.release(await answers.claim(f"{name}-released", "fingerprint"))


async def run_cache_and_lock_scripts(client: RedisCluster) -> None:
    cache = QueryCache(
        client,
        None,
        KEYS,
        answers_ttl=timedelta(seconds=30),
        stats_ttl=timedelta(seconds=5),
        max_answer_bytes=1024,
        max_bytes=1024 * 1024,
    )
    tag, _ = await cache.device_logs("device_001", 10)
    await cache.keep_device_logs("device_001", 10, tag=tag, answer=b"[]")
    assert await cache.device_logs("device_001", 10) == (tag, b"[]")
    lock = FencedLock(client, keys=KEYS, owner="me", ttl=timedelta(seconds=5))
    token = await lock.acquire()
    assert token is not None
    await lock.raise_past(token)
    assert await lock.acquire() == token + 2
    await lock.release()
