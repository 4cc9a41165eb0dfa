"""The Redis query cache against a real Redis: hits, version retirement, races, failures."""

from datetime import UTC, datetime, timedelta

import pytest

from fleetlog.cache import QueryCache
from fleetlog.keys import Keys
from fleetlog.records import LogOut
from fleetlog.redis_client import connect

KEYS = Keys("cachetest")


def make_out(i: int, device_id: str = "d1") -> LogOut:
    now = datetime.now(UTC)
    return LogOut(
        id=i,
        device_id=device_id,
        log_level="INFO",
        message=f"m{i}",
        log_data={},
        created_at=now,
        received_at=now,
    )


@pytest.fixture
async def redis(redis_url):
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def cache(redis):
    return QueryCache(
        redis, KEYS, answers_ttl=timedelta(minutes=5), stats_ttl=timedelta(seconds=60)
    )


class TestDeviceAnswers:
    async def test_miss_then_hit(self, cache):
        version, answer = await cache.device_logs("d1", 100)
        assert answer is None
        await cache.keep_device_logs("d1", 100, version=version, answer=b"[1]")
        assert await cache.device_logs("d1", 100) == (version, b"[1]")

    async def test_limits_are_cached_apart(self, cache):
        version, _ = await cache.device_logs("d1", 100)
        await cache.keep_device_logs("d1", 100, version=version, answer=b"[100]")
        assert (await cache.device_logs("d1", 5))[1] is None

    async def test_a_version_bump_retires_every_answer_of_the_device(self, cache, redis):
        version, _ = await cache.device_logs("d1", 100)
        await cache.keep_device_logs("d1", 100, version=version, answer=b"[old]")
        await redis.incr(KEYS.cache_version("d1"))
        assert (await cache.device_logs("d1", 100))[1] is None
        assert (await cache.device_logs("d2", 100))[1] is None

    async def test_an_answer_read_before_a_bump_is_not_kept(self, cache, redis):
        version, _ = await cache.device_logs("d1", 100)
        await redis.incr(KEYS.cache_version("d1"))
        await cache.keep_device_logs("d1", 100, version=version, answer=b"[stale]")
        new_version, answer = await cache.device_logs("d1", 100)
        assert answer is None
        assert new_version != version

    async def test_old_versions_do_not_pile_up(self, cache, redis):
        for _ in range(3):
            version, _ = await cache.device_logs("d1", 100)
            await cache.keep_device_logs("d1", 100, version=version, answer=b"[x]")
            await redis.incr(KEYS.cache_version("d1"))
        version, _ = await cache.device_logs("d1", 100)
        await cache.keep_device_logs("d1", 100, version=version, answer=b"[x]")
        fields = await redis.hkeys(KEYS.cache_answers("d1"))
        assert sorted(fields) == sorted([b"version", version + b":100"])
        assert 0 < await redis.ttl(KEYS.cache_answers("d1")) <= 300


class TestStats:
    async def test_kept_for_the_stats_ttl(self, cache, redis):
        assert await cache.stats() is None
        await cache.keep_stats(b'{"total_logs": 1}')
        assert await cache.stats() == b'{"total_logs": 1}'
        assert 0 < await redis.ttl(KEYS.cache_stats()) <= 60


class TestRedisDown:
    async def test_a_dead_redis_is_a_miss_and_is_counted(self, fresh_redis):
        from prometheus_client import REGISTRY

        client = connect(fresh_redis.url, socket_timeout=1.0)
        cache = QueryCache(
            client, KEYS, answers_ttl=timedelta(minutes=5), stats_ttl=timedelta(seconds=60)
        )
        fresh_redis.kill()
        labels = {"cache": "logs", "outcome": "error"}
        before = REGISTRY.get_sample_value("fleetlog_cache_requests_total", labels) or 0
        assert await cache.device_logs("d1", 100) == (b"", None)
        await cache.keep_device_logs("d1", 100, version=b"", answer=b"[]")
        assert await cache.stats() is None
        await cache.keep_stats(b"{}")
        assert REGISTRY.get_sample_value("fleetlog_cache_requests_total", labels) == before + 1
        await client.aclose()
