"""FLEETLOG_REDIS_MIN_REPLICA_ACKS on a standalone Redis: a put returns once replicas have it."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from fleetlog.errors import StoreUnavailable
from fleetlog.keys import Keys
from fleetlog.localstack.process import HOST, wait_until
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.redis_client import connect
from tests.fixtures.cluster import QUICK_REPLICATION
from tests.fixtures.pipeline import make_record
from tests.fixtures.servers import RedisServer

KEYS = Keys()
# A replica stopped while it writes its first AOF refuses to exit: this one keeps none.
NO_AOF = ("--appendonly", "no")


def replica_online(master: RedisServer) -> bool:
    with redis.Redis(host=HOST, port=master.port) as client:
        replica = client.info("replication").get("slave0")
        return isinstance(replica, dict) and replica["state"] == "online"


@pytest.fixture
def replicated() -> Iterator[RedisServer]:
    """A master with one replica streaming from it."""
    with (
        RedisServer(QUICK_REPLICATION) as master,
        RedisServer([*QUICK_REPLICATION, *NO_AOF, "--replicaof", HOST, str(master.port)]),
    ):
        wait_until(lambda: replica_online(master), what="the replica online", timeout=15)
        yield master


def make_queue(url: str, replicas: int, *, timeout_s: float) -> RedisStreamQueue:
    return RedisStreamQueue(
        connect(url),
        keys=KEYS,
        shards=2,
        max_backlog=1000,
        retry_after=2.0,
        min_replica_acks=replicas,
        replica_ack_timeout=timedelta(seconds=timeout_s),
    )


async def test_a_put_returns_once_a_replica_has_the_entry(replicated: RedisServer) -> None:
    # Generous: a replica just synced may take its first acknowledgement up to its once-a-second
    # report, however quickly it has the entry.
    queue = make_queue(replicated.url, 1, timeout_s=5)
    try:
        await queue.start()
        ids = [await queue.put([make_record(message=f"{i}")]) for i in range(4)]
    finally:
        await queue.close()
    assert len({message_id for batch in ids for message_id in batch}) == 4


async def test_too_few_replicas_is_a_503_with_retry_after(replicated: RedisServer) -> None:
    queue = make_queue(replicated.url, 2, timeout_s=0.2)
    try:
        await queue.start()
        with pytest.raises(StoreUnavailable, match="of the 2 Redis replicas required") as refused:
            await queue.put([make_record()])
    finally:
        await queue.close()
    assert refused.value.headers == {"Retry-After": "2"}
