"""FLEETLOG_REDIS_MIN_REPLICA_ACKS on a standalone Redis: a put returns once replicas have it,
and so does a keyed retry answered from the mark of an earlier put."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from fleetlog.errors import StoreUnavailable
from fleetlog.idempotency.answers import Mark
from fleetlog.keys import Keys
from fleetlog.localstack.process import HOST, free_port, wait_until
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.redis_client import connect
from tests.fixtures.cluster import QUICK_REPLICATION
from tests.fixtures.pipeline import make_record, pipeline_settings
from tests.fixtures.replicas import assert_retries_wait_for_replicas
from tests.fixtures.servers import RedisServer

KEYS = Keys()
# A replica stopped while it writes its first AOF refuses to exit: this one keeps none.
NO_AOF = ("--appendonly", "no")


def replica_online(master: RedisServer) -> bool:
    with redis.Redis(host=HOST, port=master.port) as client:
        replica = client.info("replication").get("slave0")
        return isinstance(replica, dict) and replica["state"] == "online"


@dataclass(frozen=True)
class Replicated:
    master: RedisServer
    replica: RedisServer


@pytest.fixture
def replicated() -> Iterator[Replicated]:
    """A master with one replica streaming from it."""
    with (
        RedisServer(QUICK_REPLICATION) as master,
        RedisServer(
            [*QUICK_REPLICATION, *NO_AOF, "--replicaof", HOST, str(master.port)]
        ) as replica,
    ):
        wait_until(lambda: replica_online(master), what="the replica online", timeout=15)
        yield Replicated(master, replica)


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


async def test_a_put_returns_once_a_replica_has_the_entry(replicated: Replicated) -> None:
    # Generous: a replica just synced may take its first acknowledgement up to its once-a-second
    # report, however quickly it has the entry.
    queue = make_queue(replicated.master.url, 1, timeout_s=5)
    try:
        await queue.start()
        ids = [await queue.put([make_record(message=f"{i}")]) for i in range(4)]
    finally:
        await queue.close()
    assert len({message_id for batch in ids for message_id in batch}) == 4


async def test_too_few_replicas_is_a_503_with_retry_after(replicated: Replicated) -> None:
    queue = make_queue(replicated.master.url, 2, timeout_s=0.2)
    try:
        await queue.start()
        with pytest.raises(StoreUnavailable, match="of the 2 Redis replicas required") as refused:
            await queue.put([make_record()])
    finally:
        await queue.close()
    assert refused.value.headers == {"Retry-After": "2"}


class TestEnsureDurable:
    async def test_returns_once_a_replica_has_the_entry(self, replicated: Replicated) -> None:
        queue = make_queue(replicated.master.url, 1, timeout_s=5)
        mark = Mark("request-1", "token-1", "fingerprint", datetime.now(UTC))
        try:
            await queue.start()
            await queue.put([make_record()], mark=mark)
            await queue.ensure_durable(mark.name)
        finally:
            await queue.close()

    async def test_a_mark_gone_from_redis_asks_for_a_retry(self, replicated: Replicated) -> None:
        queue = make_queue(replicated.master.url, 1, timeout_s=5)
        try:
            await queue.start()
            with pytest.raises(StoreUnavailable, match="no longer holds") as refused:
                await queue.ensure_durable("never-marked")
        finally:
            await queue.close()
        assert refused.value.headers == {"Retry-After": "1"}

    async def test_without_replicas_to_wait_for_redis_is_not_asked(self) -> None:
        queue = make_queue(f"redis://{HOST}:{free_port()}/0", 0, timeout_s=1)
        try:
            await queue.ensure_durable("never-marked")
        finally:
            await queue.close()


async def test_a_keyed_retry_waits_for_the_replica_as_its_first_attempt_did(
    replicated: Replicated, pg_url: str, tmp_path: Path
) -> None:
    settings = pipeline_settings(
        replicated.master.url,
        pg_url,
        tmp_path,
        redis_min_replica_acks=1,
        redis_replica_ack_timeout=timedelta(milliseconds=300),
    )
    await assert_retries_wait_for_replicas(settings, [replicated.replica])
