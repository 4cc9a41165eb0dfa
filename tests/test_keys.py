"""The Redis key schema: one namespace, one hash tag per shard."""

from fleetlog.keys import Keys


def test_shard_keys_share_one_hash_tag() -> None:
    keys = Keys("fl")
    assert keys.stream(2) == "fl:{s2}:stream"
    assert keys.backlog(2) == "fl:{s2}:backlog"
    assert keys.dead(2) == "fl:{s2}:dead"
    assert keys.stored(2) == "fl:{s2}:stored"
    assert keys.stored_samples(2) == "fl:{s2}:stored:at"
    assert keys.group == "fl-workers"
    assert keys.cache_version("cam-7") == "fl:{d:cam-7}:ver"
