"""Dead letters on real Redis and PostgreSQL: listed, shown, replayed exactly once, purged."""

import pytest
from redis.asyncio import Redis

from fleetlog.config import Settings
from fleetlog.errors import InvalidParameter, NotFound
from fleetlog.keys import Keys
from fleetlog.queue.dead_letters import DeadLetters, DeadLettersOut
from fleetlog.queue.redis_streams import RedisStreamQueue
from tests.fixtures.pipeline import (
    Table,
    assert_stored_once,
    make_record,
    open_consumer,
    running_worker,
    wait_for,
)

KEYS = Keys()


def dead_letters_of(redis: Redis) -> DeadLetters:
    return DeadLetters(redis, keys=KEYS, shards=4)


async def delivered_too_often(settings: Settings, shard: int, times: int) -> None:
    """Deliver the shard's entries `times` times to consumers that die before storing them."""
    for delivery in range(times):
        ghost = open_consumer(settings, f"ghost-{delivery}")
        try:
            await ghost.reclaim(shard, min_idle_ms=0, count=10)
        finally:
            await ghost.close()


async def test_a_dead_letter_is_listed_shown_replayed_once_and_purged(
    pipeline: Settings, queue: RedisStreamQueue, redis: Redis, table: Table
) -> None:
    records = [make_record(device_id="cam-9", message=f"door {i}") for i in range(3)]
    ids = await queue.put(records)  # onto shard 0
    reader = open_consumer(pipeline, "reader")
    try:
        await reader.read(0, count=10, block_ms=10)
    finally:
        await reader.close()
    await delivered_too_often(pipeline, 0, pipeline.max_deliveries - 1)
    dead = dead_letters_of(redis)

    async with running_worker(pipeline):
        await wait_for(lambda: has_dead_letters(dead, 1), what="the entry dead-lettered")
        listed = await dead.oldest(limit=10)
        [letter] = listed.entries
        assert (listed.total, letter.shard, letter.logs) == (1, 0, 3)
        assert letter.entry == ids[0].split("-", 1)[1].rsplit("-", 1)[0]
        assert letter.reason == "max_deliveries"
        assert letter.deliveries == pipeline.max_deliveries + 1

        shown = await dead.show(letter.id)
        assert shown.records is not None
        assert [record["message"] for record in shown.records] == ["door 0", "door 1", "door 2"]
        assert shown.error.startswith("delivered")

        first = await dead.replay([letter.id])
        assert list(first.replayed) == [letter.id]
        second = await dead.replay([letter.id])
        assert (second.replayed, second.missing) == ({}, [letter.id])
        await wait_for(lambda: table.has(3), what="the replayed logs stored")
        await wait_for(lambda: drained(redis), what="the stream drained")

    assert await table.count() == 3
    new_ids = [f"{first.replayed[letter.id]}-{i}" for i in range(3)]
    await assert_stored_once(table, new_ids)
    assert await dead.oldest(limit=10) == DeadLettersOut(total=0, entries=[])

    await redis.xadd(KEYS.dead(1), {"id": "1-0", "n": "1", "b": b"x"})
    await redis.xadd(KEYS.dead(3), {"id": "1-0", "n": "1", "b": b"x"})
    assert await dead.purge() == 2
    assert await dead.purge() == 0


async def test_replay_all_takes_those_there_are_now(redis: Redis, pipeline: Settings) -> None:
    dead = dead_letters_of(redis)
    for shard in (0, 0, 2):
        await redis.xadd(
            KEYS.dead(shard), {"id": "1-0", "reason": "undecodable", "n": "2", "b": b"x"}
        )

    replayed = await dead.replay_all()

    assert len(replayed.replayed) == 3
    assert [await redis.xlen(KEYS.stream(shard)) for shard in range(4)] == [2, 0, 1, 0]
    assert [int(await redis.get(KEYS.backlog(shard)) or 0) for shard in (0, 2)] == [4, 2]
    assert (await dead.oldest(limit=10)).total == 0


async def test_an_undecodable_payload_is_shown_raw(redis: Redis) -> None:
    entry_id = await redis.xadd(KEYS.dead(1), {"id": "1-0", "n": "0", "b": b"\x80not a batch"})
    shown = await dead_letters_of(redis).show(f"1-{entry_id.decode()}")
    assert shown.records is None
    assert shown.payload is not None
    assert "not a batch" in shown.payload
    assert shown.reason == "unknown"


@pytest.mark.parametrize(
    ("dead_id", "rule"),
    [("nope", "dead_letter_id"), ("1-2", "dead_letter_id"), ("9-1-0", "shard")],
)
async def test_a_bad_id_names_the_field_and_its_rule(redis: Redis, dead_id: str, rule: str):
    with pytest.raises(InvalidParameter) as raised:
        await dead_letters_of(redis).show(dead_id)
    assert raised.value.detail[0]["field"] == "id"
    assert raised.value.detail[0]["rule"] == rule


async def test_an_unknown_id_is_not_found(redis: Redis) -> None:
    with pytest.raises(NotFound):
        await dead_letters_of(redis).show("0-1-0")


async def has_dead_letters(dead: DeadLetters, count: int) -> bool:
    return (await dead.oldest(limit=10)).total == count


async def drained(redis: Redis) -> bool:
    return not any([await redis.xlen(KEYS.stream(shard)) for shard in range(4)])
