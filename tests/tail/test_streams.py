"""The pipeline's tail source on a real Redis: XREAD beside the workers' group, and resume."""

from typing import Any

import pytest
from redis.asyncio import Redis

from fleetlog.errors import InvalidParameter
from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.tail.streams import WHOLE, StreamSource
from tests.fixtures.pipeline import make_record


@pytest.fixture
def source(queue: RedisStreamQueue) -> StreamSource:
    return StreamSource(queue.client, keys=queue.keys, shards=queue.shards, block_ms=50)


async def test_new_entries_are_read_and_a_poison_one_is_passed_over(source, queue, redis: Redis):
    head = await source.head()
    await redis.xadd(Keys().stream(0), {"n": "1", "b": "not a batch"})
    ids = await queue.put([make_record(message="a"), make_record(message="b")])
    events, position = await source.read(head)
    assert [event.id for event in events] == ids
    assert [event.fields.message for event in events] == ["a", "b"]
    assert await source.read(position) == ([], position)
    # The workers' group still has every entry to deliver: nothing was taken from it.
    groups: Any = await redis.xinfo_groups(Keys().stream(0))
    assert groups[0]["lag"] == 2


async def test_a_resume_replays_after_its_event_in_its_shard_and_from_its_ms_in_others(
    source, queue
):
    first = await queue.put([make_record(message=f"m{i}") for i in range(3)])
    # One more in every shard (requests take the shards in turn).
    later = [await queue.put([make_record(message="next")]) for _ in source.streams]
    after, until = source.resume_point(first[0]), await source.head()
    replayed: list[Any] = [event async for event in source.replay(after, until)]
    ids = [event.id for event in replayed]
    assert ids[:2] == first[1:]
    assert sorted(ids[2:]) == sorted(message_id for [message_id] in later)


def test_an_event_id_names_a_shard_and_a_place_in_it(source):
    ms = 1_700_000_000_000
    point = source.resume_point(f"1-{ms}-3-7")
    assert point[1] == (ms, 3, 7)
    assert point[0] == point[2] == (ms, 0, -1)
    assert all(place < (ms, 0, 0) for place in point[::2])
    assert (ms, 3, WHOLE) > point[1]
    for bad in ("1-2-3", f"{len(source.streams)}-{ms}-0-0", "x-1-2-3", "12"):
        with pytest.raises(InvalidParameter):
            source.resume_point(bad)
