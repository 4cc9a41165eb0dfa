"""The Redis key schema: one namespace, one hash tag per shard, a stable shard choice."""

from fleetlog.keys import Keys, shard_of


def test_shard_keys_share_one_hash_tag() -> None:
    keys = Keys("fl")
    assert keys.stream(2) == "fl:{s2}:stream"
    assert keys.backlog(2) == "fl:{s2}:backlog"
    assert keys.dead(2) == "fl:{s2}:dead"
    assert keys.group == "fl-workers"
    assert keys.cache_version("cam-7") == "fl:{d:cam-7}:ver"


def test_shard_of_is_stable_and_spreads_devices() -> None:
    assert shard_of("cam-7", 4) == shard_of("cam-7", 4) == 1
    assert {shard_of(f"device_{i:03}", 4) for i in range(100)} == {0, 1, 2, 3}
