"""The Redis query cache against a real Redis: hits, retirement, races, bounds, failures."""

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from fleetlog.cache import QueryCache
from fleetlog.keys import Keys
from fleetlog.redis_client import connect

KEYS = Keys("cachetest")
MiB = 1024 * 1024


def make_cache(counters, answers=None, **overrides) -> QueryCache:
    options = {
        "answers_ttl": timedelta(minutes=5),
        "stats_ttl": timedelta(seconds=60),
        "max_answer_bytes": MiB,
        "max_bytes": 64 * MiB,
    }
    options.update(overrides)
    return QueryCache(counters, answers, KEYS, **options)


@pytest.fixture
async def redis(redis_url):
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def cache(redis):
    return make_cache(redis)


async def kept(cache: QueryCache, device_id: str, limit: int, answer: bytes) -> bytes:
    tag, _ = await cache.device_logs(device_id, limit)
    await cache.keep_device_logs(device_id, limit, tag=tag, answer=answer)
    return tag


class TestDeviceAnswers:
    async def test_miss_then_hit(self, cache):
        tag = await kept(cache, "d1", 100, b"[1]")
        assert await cache.device_logs("d1", 100) == (tag, b"[1]")

    async def test_limits_are_cached_apart(self, cache):
        await kept(cache, "d1", 100, b"[100]")
        assert (await cache.device_logs("d1", 10))[1] is None

    async def test_a_version_bump_retires_the_device_answers_only(self, cache, redis):
        await kept(cache, "d1", 100, b"[old]")
        await kept(cache, "d2", 100, b"[other]")
        await redis.incr(KEYS.cache_version("d1"))
        assert (await cache.device_logs("d1", 100))[1] is None
        assert (await cache.device_logs("d2", 100))[1] == b"[other]"

    async def test_a_generation_bump_retires_every_device_answers(self, cache, redis):
        await kept(cache, "d1", 100, b"[1]")
        await kept(cache, "d2", 10, b"[2]")
        await redis.incr(KEYS.cache_generation())
        assert (await cache.device_logs("d1", 100))[1] is None
        assert (await cache.device_logs("d2", 10))[1] is None

    async def test_an_answer_read_before_a_bump_is_never_served(self, cache, redis):
        tag, _ = await cache.device_logs("d1", 100)
        await redis.incr(KEYS.cache_version("d1"))
        await cache.keep_device_logs("d1", 100, tag=tag, answer=b"[stale]")
        new_tag, answer = await cache.device_logs("d1", 100)
        assert answer is None
        assert new_tag != tag

    async def test_answers_expire_with_the_ttl(self, cache, redis):
        await kept(cache, "d1", 100, b"[x]")
        assert 0 < await redis.ttl(KEYS.cache_answer("d1", 100)) <= 300


class TestBounds:
    async def test_an_answer_over_the_size_is_not_kept(self, redis):
        cache = make_cache(redis, max_answer_bytes=1000)
        assert cache.keeps(1000)
        assert not cache.keeps(1001)
        await kept(cache, "d1", 100, b"x" * 1001)
        assert await redis.exists(KEYS.cache_answer("d1", 100)) == 0

    async def test_answers_in_the_shared_redis_add_up_to_the_cap(self, redis):
        cache = make_cache(redis, max_bytes=2500)
        for device_id in ("d1", "d2", "d3"):
            await kept(cache, device_id, 100, b"x" * 1000)
        found = [await redis.exists(KEYS.cache_answer(d, 100)) for d in ("d1", "d2", "d3")]
        assert found == [1, 1, 0]

    async def test_nothing_is_kept_past_half_the_shared_redis_memory(self, fresh_redis):
        client = connect(fresh_redis.url)
        used = (await client.info("memory"))["used_memory"]
        await client.config_set("maxmemory", str(used * 2 - 100_000))
        cache = make_cache(client)
        await kept(cache, "d1", 100, b"x" * 200_000)
        assert await client.exists(KEYS.cache_answer("d1", 100)) == 0
        await client.aclose()

    async def test_a_cache_redis_of_its_own_holds_the_answers_without_the_cap(
        self, redis, fresh_redis
    ):
        answers = connect(fresh_redis.url)
        cache = make_cache(redis, answers, max_bytes=1000)
        await kept(cache, "d1", 100, b"x" * 5000)
        await kept(cache, "d2", 100, b"x" * 5000)
        assert await answers.exists(KEYS.cache_answer("d1", 100), KEYS.cache_answer("d2", 100)) == 2
        assert await redis.exists(KEYS.cache_answer("d1", 100)) == 0
        await redis.incr(KEYS.cache_version("d1"))
        assert (await cache.device_logs("d1", 100))[1] is None
        assert (await cache.device_logs("d2", 100))[1] == b"x" * 5000
        await answers.aclose()


class TestStats:
    async def test_kept_for_the_stats_ttl(self, cache, redis):
        assert await cache.stats() is None
        await cache.keep_stats(b'{"total_logs": 1}')
        assert await cache.stats() == b'{"total_logs": 1}'
        assert 0 < await redis.ttl(KEYS.cache_stats()) <= 60


class TestRedisDown:
    async def test_a_dead_redis_is_a_miss_and_is_counted(self, fresh_redis):
        client = connect(fresh_redis.url, socket_timeout=1.0)
        cache = make_cache(client)
        fresh_redis.kill()
        labels = {"cache": "logs", "outcome": "error"}
        before = REGISTRY.get_sample_value("fleetlog_cache_requests_total", labels) or 0
        assert await cache.device_logs("d1", 100) == (b"", None)
        await cache.keep_device_logs("d1", 100, tag=b"", answer=b"[]")
        assert await cache.stats() is None
        await cache.keep_stats(b"{}")
        assert REGISTRY.get_sample_value("fleetlog_cache_requests_total", labels) == before + 1
        await client.aclose()
