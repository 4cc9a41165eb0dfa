"""GCRA, in process and in Redis: the same answers, and Redis budgets shared by limiters."""

import asyncio
import time

import pytest

from fleetlog.keys import Keys
from fleetlog.metrics import RATE_LIMIT_ERRORS
from fleetlog.ratelimit import MICROS, Limit, decide
from fleetlog.ratelimit.memory import MemoryRateLimiter
from fleetlog.ratelimit.redis_gcra import RedisRateLimiter
from tests.fixtures.process import free_port

SLOW = Limit(rate=0.01, burst=3)
KEYS = Keys("fleetlog-test")
ONE_AT_A_TIME = [Limit(rate=rate, burst=1) for rate in (0.3, 0.01, 0.001, 1e-6)]
# Monotonic clock readings, among them ones just below 2**10, 2**20 and 2**30: there now + interval
# lands in a coarser binade and, in floating point, (now + interval) - interval came out past now.
CLOCKS = [995.0, 995.4, 1e6 + 0.1, 1_047_676.1, 1e9 + 0.3, 1_073_740_924.4]


def rate_id(limit: Limit) -> str:
    return f"rate={limit.rate:g}"


class SetClock:
    """A monotonic clock that reads what the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TestDecide:
    def test_a_burst_is_allowed_then_refused(self):
        tat, now, remaining = 0, 100 * MICROS, []
        for _ in range(3):
            decision, tat = decide(tat, now, SLOW)
            remaining.append(decision.remaining)
        refused, after = decide(tat, now, SLOW)
        assert remaining == [2, 1, 0]
        assert not refused.allowed
        assert refused.retry_after == pytest.approx(100.0)
        assert after == tat

    def test_budget_comes_back_at_the_rate(self):
        _, tat = decide(0, 100 * MICROS, Limit(rate=1.0, burst=1))
        assert not decide(tat, 100_500_000, Limit(rate=1.0, burst=1))[0].allowed
        assert decide(tat, 101 * MICROS, Limit(rate=1.0, burst=1))[0].allowed

    def test_an_interval_is_whole_microseconds(self):
        assert Limit(rate=3.0, burst=1).interval_us == 333_333
        assert Limit(rate=1e7, burst=1).interval_us == 1


@pytest.mark.parametrize("limit", ONE_AT_A_TIME, ids=rate_id)
@pytest.mark.parametrize("now", CLOCKS, ids=repr)
class TestBurstOfOneInProcess:
    async def test_a_fresh_subject_gets_one_request(self, now, limit):
        limiter = MemoryRateLimiter(clock=SetClock(now))
        first, second = [await limiter.hit("key:1", limit) for _ in range(2)]
        assert (first.allowed, first.remaining) == (True, 0)
        assert not second.allowed

    async def test_an_idle_subject_gets_one_request_again(self, now, limit):
        clock = SetClock(now - 2 / limit.rate)
        limiter = MemoryRateLimiter(clock=clock)
        assert (await limiter.hit("key:1", limit)).allowed
        clock.now = now
        again = await limiter.hit("key:1", limit)
        assert (again.allowed, again.remaining) == (True, 0)


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

    @pytest.mark.parametrize("limit", ONE_AT_A_TIME, ids=rate_id)
    async def test_a_burst_of_one_is_one_request(self, limiter, limit):
        first, second = [await limiter.hit("key:1", limit) for _ in range(2)]
        assert (first.allowed, first.remaining, second.allowed) == (True, 0, False)

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


@pytest.mark.parametrize("limit", ONE_AT_A_TIME, ids=rate_id)
async def test_an_idle_subject_gets_one_request_again_from_redis(redis_url, limit):
    limiter = RedisRateLimiter(redis_url, keys=KEYS)
    try:
        seconds, micros = await limiter.redis.time()
        idle_since = seconds * 1_000_000 + micros - round(2_000_000 / limit.rate)
        await limiter.redis.set(KEYS.rate_limit("key:1"), idle_since)
        again = await limiter.hit("key:1", limit)
    finally:
        await limiter.close()
    assert (again.allowed, again.remaining) == (True, 0)


async def test_without_redis_requests_pass_and_are_counted():
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", keys=KEYS)
    before = RATE_LIMIT_ERRORS._value.get()
    try:
        decision = await limiter.hit("key:1", SLOW)
    finally:
        await limiter.close()
    assert decision.allowed
    assert RATE_LIMIT_ERRORS._value.get() == before + 1
