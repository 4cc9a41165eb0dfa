"""Sessions on SQLite and PostgreSQL: a refresh works once, a replay ends the family."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fleetlog.auth.principals import Role
from fleetlog.store.tables import sessions
from tests.fixtures.auth import PASSWORD, credentials, secure_settings

LATER = timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path):
    overrides = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("database_url")
    async with credentials(secure_settings(tmp_path, **overrides)) as store:
        yield store


@pytest.fixture
async def ann(store):
    return await store.create_user("ann", role=Role.READER, password=PASSWORD)


def until(delta: timedelta = LATER) -> datetime:
    return datetime.now(UTC) + delta


class TestSessions:
    async def test_a_new_session_is_held_by_its_user_only(self, store, ann):
        bob = await store.create_user("bob", role=Role.READER, password=PASSWORD)
        session = await store.sessions.open(ann.id, until=until())
        assert await store.sessions.holder(session, ann.id) == ann
        assert await store.sessions.holder(session, bob.id) is None
        assert await store.sessions.holder("no-such-session", ann.id) is None

    async def test_each_generation_rotates_once(self, store, ann):
        session = await store.sessions.open(ann.id, until=until())
        rotate = store.sessions.rotate
        assert await rotate(session, user_id=ann.id, generation=0, until=until()) == 1
        assert await rotate(session, user_id=ann.id, generation=1, until=until()) == 2
        assert await store.sessions.holder(session, ann.id) == ann

    async def test_a_replayed_generation_ends_the_session(self, store, ann):
        session = await store.sessions.open(ann.id, until=until())
        other = await store.sessions.open(ann.id, until=until())
        rotate = store.sessions.rotate
        assert await rotate(session, user_id=ann.id, generation=0, until=until()) == 1
        assert await rotate(session, user_id=ann.id, generation=0, until=until()) is None
        assert await store.sessions.holder(session, ann.id) is None
        assert await rotate(session, user_id=ann.id, generation=1, until=until()) is None
        assert await store.sessions.holder(other, ann.id) == ann

    async def test_a_generation_not_reached_yet_changes_nothing(self, store, ann):
        session = await store.sessions.open(ann.id, until=until())
        assert (
            await store.sessions.rotate(session, user_id=ann.id, generation=5, until=until())
            is None
        )
        assert await store.sessions.holder(session, ann.id) == ann

    async def test_concurrent_rotations_have_one_winner(self, store, ann):
        session = await store.sessions.open(ann.id, until=until())
        results = await asyncio.gather(
            *(
                store.sessions.rotate(session, user_id=ann.id, generation=0, until=until())
                for _ in range(8)
            )
        )
        assert sorted(results, key=str) == [1] + [None] * 7

    async def test_an_expired_session_is_not_held_nor_rotated(self, store, ann):
        session = await store.sessions.open(ann.id, until=until(-LATER))
        assert await store.sessions.holder(session, ann.id) is None
        rotated = await store.sessions.rotate(session, user_id=ann.id, generation=0, until=until())
        assert rotated is None

    async def test_expired_sessions_go_at_the_next_sign_in(self, store, ann):
        await store.sessions.open(ann.id, until=until(-LATER))
        kept = await store.sessions.open(ann.id, until=until())
        async with store.sessions.engine.connect() as conn:
            ids = (await conn.execute(select(sessions.c.id))).scalars().all()
        assert ids == [kept]

    async def test_deleting_a_user_ends_their_sessions(self, store, ann):
        session = await store.sessions.open(ann.id, until=until())
        await store.users.delete("ann")
        async with store.sessions.engine.connect() as conn:
            assert (await conn.execute(select(sessions))).all() == []
        assert await store.sessions.holder(session, ann.id) is None
