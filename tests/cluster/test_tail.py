"""Tail on a Redis Cluster: new logs of every shard's stream, wherever its master is."""

import pytest

from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.redis_client import connect
from fleetlog.tail.events import TailEvent
from fleetlog.tail.streams import StreamSource
from tests.fixtures.pipeline import make_record

pytestmark = pytest.mark.cluster

KEYS = Keys()
SHARDS = 4
READS = 20


async def test_new_logs_of_every_shard_are_read(cluster_url: str) -> None:
    client = connect(cluster_url, cluster=True)
    queue = RedisStreamQueue(client, keys=KEYS, shards=SHARDS, max_backlog=1000, retry_after=1.0)
    try:
        await queue.start()
        source = StreamSource(client, keys=KEYS, shards=SHARDS, block_ms=100)
        position = await source.head()
        ids = [id_ for i in range(SHARDS) for id_ in await queue.put([make_record(message=f"{i}")])]
        events: list[TailEvent] = []
        for _ in range(READS):
            found, position = await source.read(position)
            events += found
            if len(events) >= len(ids):
                break
    finally:
        await queue.close()
    assert sorted(event.id for event in events) == sorted(ids)
