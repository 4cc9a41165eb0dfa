"""GCRA, in process and in Redis: the same answers, and Redis budgets shared by limiters."""

import asyncio
import time

import pytest

from fleetlog.keys import Keys
from fleetlog.metrics import RATE_LIMIT_ERRORS
from fleetlog.ratelimit import Limit, decide
from fleetlog.ratelimit.memory import MemoryRateLimiter
from fleetlog.ratelimit.redis_gcra import RedisRateLimiter
from tests.fixtures.process import free_port

SLOW = Limit(rate=0.01, burst=3)
KEYS = Keys("fleetlog-test")


class TestDecide:
    def test_a_burst_is_allowed_then_refused(self):
        tat, now, remaining = 0.0, 100.0, []
        for _ in range(3):
            decision, tat = decide(tat, now, SLOW)
            remaining.append(decision.remaining)
        refused, after = decide(tat, now, SLOW)
        assert remaining == [2, 1, 0]
        assert not refused.allowed
        assert refused.retry_after == pytest.approx(100.0)
        assert after == tat

    def test_budget_comes_back_at_the_rate(self):
        _, tat = decide(0.0, 100.0, Limit(rate=1.0, burst=1))
        assert not decide(tat, 100.5, Limit(rate=1.0, burst=1))[0].allowed
        assert decide(tat, 101.0, Limit(rate=1.0, burst=1))[0].allowed


@pytest.fixture(params=["memory", "redis"])
async def limiter(request):
    if request.param == "memory":
        made = MemoryRateLimiter()
    else:
        made = RedisRateLimiter(request.getfixturevalue("redis_url"), keys=KEYS)
    yield made
    await made.close()


class TestLimiters:
    async def test_burst_then_refused(self, limiter):
        decisions = [await limiter.hit("key:1", SLOW) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert decisions[-1].retry_after == pytest.approx(100.0, abs=0.1)

    async def test_subjects_are_separate(self, limiter):
        for _ in range(3):
            await limiter.hit("key:1", SLOW)
        assert (await limiter.hit("key:2", SLOW)).allowed

    async def test_allowed_again_after_retry_after(self, limiter):
        fast = Limit(rate=50.0, burst=1)
        await limiter.hit("key:1", fast)
        refused = await limiter.hit("key:1", fast)
        assert not refused.allowed
        deadline = time.monotonic() + 30.0
        while not (await limiter.hit("key:1", fast)).allowed:
            assert time.monotonic() < deadline
            await asyncio.sleep(refused.retry_after / 4)


async def test_redis_limiters_share_one_budget(redis_url):
    first = RedisRateLimiter(redis_url, keys=KEYS)
    second = RedisRateLimiter(redis_url, keys=KEYS)
    try:
        allowed = [
            (await limiter.hit("key:1", SLOW)).allowed for limiter in (first, second, first, second)
        ]
    finally:
        await first.close()
        await second.close()
    assert allowed == [True, True, True, False]


async def test_without_redis_requests_pass_and_are_counted():
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", keys=KEYS)
    before = RATE_LIMIT_ERRORS._value.get()
    try:
        decision = await limiter.hit("key:1", SLOW)
    finally:
        await limiter.close()
    assert decision.allowed
    assert RATE_LIMIT_ERRORS._value.get() == before + 1
