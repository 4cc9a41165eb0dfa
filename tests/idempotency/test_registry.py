"""The idempotency registry on both stores: claimed, stored, in flight, released, expired."""

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, inspect, select

from fleetlog.config import Settings
from fleetlog.idempotency import Registry, Seen
from fleetlog.idempotency.redis_registry import RedisRegistry
from fleetlog.idempotency.sqlite_registry import SqliteRegistry
from fleetlog.keys import Keys
from fleetlog.redis_client import connect
from fleetlog.store.engine import create_store_engine
from fleetlog.store.migrate import migrate
from fleetlog.store.tables import idempotency_keys
from tests.fixtures.migrations import downgrade_to
from tests.fixtures.pipeline import wait_for

DAY = timedelta(days=1)
# Make a registry on the test's store: `ttl` for stored keys, `pending_ttl` for claims.
Open = Callable[..., Registry]


@pytest.fixture
async def sqlite_engine(settings: Settings):
    engine = create_store_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["sqlite", "redis"])
async def opened(request, settings: Settings) -> AsyncIterator[Open]:
    """Registries of one store, as many as a test opens (a restart is a second one)."""
    if request.param == "sqlite":
        engine = create_store_engine(settings)
        yield lambda **ttls: SqliteRegistry(engine, **{"ttl": DAY, **ttls})
        await engine.dispose()
        return
    redis = connect(request.getfixturevalue("redis_url"))
    keys = Keys("idem-test")
    yield lambda **ttls: RedisRegistry(redis, keys=keys, **{"ttl": DAY, **ttls})
    await redis.aclose()


async def seen(registry: Registry, *keys: str) -> list[Seen]:
    claim = await registry.claim(keys)
    return [claim.seen[key] for key in keys]


class TestRegistry:
    async def test_a_new_key_is_claimed_once(self, opened: Open):
        registry = opened()
        claim = await registry.claim(["a", "b"])
        assert claim.seen == {"a": Seen.NEW, "b": Seen.NEW}
        assert claim.new() == ["a", "b"]
        assert await seen(registry, "a", "b", "c") == [Seen.IN_FLIGHT, Seen.IN_FLIGHT, Seen.NEW]

    async def test_a_confirmed_key_is_stored_even_for_a_registry_opened_later(self, opened: Open):
        claim = await opened().claim(["a", "b"])
        await opened().confirm(claim, ["a"])
        assert await seen(opened(), "a", "b") == [Seen.STORED, Seen.IN_FLIGHT]

    async def test_a_released_key_may_be_claimed_again(self, opened: Open):
        registry = opened()
        claim = await registry.claim(["a"])
        await registry.release(claim, ["a"])
        assert await seen(registry, "a") == [Seen.NEW]

    async def test_only_the_claimer_releases_or_confirms(self, opened: Open):
        registry = opened()
        mine = await registry.claim(["a"])
        other = await registry.claim(["a"])
        await registry.release(other, ["a"])
        await registry.confirm(other, ["a"])
        assert await seen(registry, "a") == [Seen.IN_FLIGHT]
        await registry.confirm(mine, ["a"])
        assert await seen(registry, "a") == [Seen.STORED]

    async def test_a_claim_left_pending_frees_its_key_after_the_pending_ttl(self, opened: Open):
        registry = opened(pending_ttl=timedelta(milliseconds=50))
        await registry.claim(["crashed"])

        async def claimed_again() -> bool:
            return await seen(registry, "crashed") == [Seen.NEW]

        await wait_for(claimed_again, what="the abandoned claim to expire", within=10)

    async def test_a_late_confirm_does_not_take_a_key_claimed_since(self, opened: Open):
        registry = opened(pending_ttl=timedelta(milliseconds=50))
        slow = await registry.claim(["k"])
        retries = []

        async def claimed_by_a_retry() -> bool:
            retries.append(await registry.claim(["k"]))
            return retries[-1].seen["k"] is Seen.NEW

        await wait_for(claimed_by_a_retry, what="the slow claim to expire", within=10)
        await registry.confirm(slow, ["k"])
        await registry.release(retries[-1], ["k"])
        assert await seen(opened(), "k") == [Seen.NEW]

    async def test_a_stored_key_is_forgotten_after_the_ttl(self, opened: Open):
        registry = opened(ttl=timedelta(milliseconds=50))
        await registry.confirm(await registry.claim(["old"]), ["old"])

        async def forgotten() -> bool:
            return await seen(registry, "old") == [Seen.NEW]

        await wait_for(forgotten, what="the stored key to expire", within=10)

    async def test_any_text_is_a_key(self, opened: Open):
        registry = opened()
        keys = ["x" * 2000, "{slot}", "ü\x00/"]
        claim = await registry.claim(keys)
        await registry.confirm(claim, keys)
        assert await seen(registry, *keys) == [Seen.STORED] * 3

    async def test_no_keys_is_no_work(self, opened: Open):
        registry = opened()
        claim = await registry.claim([])
        await registry.confirm(claim, [])
        await registry.release(claim, [])
        assert claim.seen == {}


class TestSqlite:
    async def test_claims_purge_expired_keys_a_few_at_a_time(self, sqlite_engine):
        short = SqliteRegistry(sqlite_engine, ttl=timedelta(milliseconds=1))
        keys = [f"k{i}" for i in range(250)]
        await short.confirm(await short.claim(keys), keys)
        registry = SqliteRegistry(sqlite_engine, ttl=DAY)

        async def rows() -> int:
            async with sqlite_engine.connect() as conn:
                count = select(func.count()).select_from(idempotency_keys)
                return int((await conn.execute(count)).scalar_one())

        async def all_expired() -> bool:
            async with sqlite_engine.connect() as conn:
                latest = select(func.max(idempotency_keys.c.expires_at))
                return float((await conn.execute(latest)).scalar_one()) < time.time()

        await wait_for(all_expired, what="the stored keys to expire", within=10)
        await registry.claim(["new"])
        assert await rows() == 250 + 1 - 102
        await registry.claim(["newer"])
        assert await rows() == 250 + 2 - 102 - 102

    async def test_the_migration_goes_down_and_up_again(self, sqlite_engine):
        def tables(sync) -> set[str]:
            return set(inspect(sync).get_table_names())

        async with sqlite_engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0006")
            assert "idempotency_keys" not in await conn.run_sync(tables)
        await migrate(sqlite_engine)
        async with sqlite_engine.connect() as conn:
            assert "idempotency_keys" in await conn.run_sync(tables)
