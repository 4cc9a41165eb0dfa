"""Signed-in people through the API: refresh exchanges, and what ends a user's tokens."""

import asyncio
import time
from typing import Any

import httpx
import pytest

from fleetlog.auth.principals import Role, Scope
from fleetlog.config import Settings
from tests.fixtures.auth import PASSWORD, add_key, add_user, bearer, secure_settings, serving

# Polling adds up to this much to the bound on a busy machine.
POLL_MARGIN_S = 0.5


async def tokens(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    answer = await client.post("/api/auth/token", data={"username": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    pair: dict[str, Any] = answer.json()
    return pair


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return await client.post("/api/auth/token", data=form)


async def me(client: httpx.AsyncClient, credential: str) -> int:
    return (await client.get("/api/auth/me", headers=bearer(credential))).status_code


async def refused_within(client: httpx.AsyncClient, credentials: list[str], bound_s: float) -> None:
    """Poll until each credential gets 401; fail past the bound (plus a polling margin)."""
    began = time.monotonic()
    pending = set(credentials)
    while pending:
        pending = {credential for credential in pending if await me(client, credential) != 401}
        elapsed = time.monotonic() - began
        assert elapsed <= bound_s + POLL_MARGIN_S, f"still accepted after {elapsed:.2f}s"
        await asyncio.sleep(0.02)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return secure_settings(tmp_path, auth_cache_ttl=0.5)


@pytest.fixture
async def admin(settings) -> dict[str, str]:
    """Headers of an admin key's requests."""
    return bearer(await add_key(settings, "admin", Scope.ADMIN))


@pytest.fixture
async def client(settings, admin):
    for name in ("ann", "bob"):
        await add_user(settings, name, Role.READER)
    async with serving(settings) as client:
        yield client


class TestRefresh:
    async def test_a_refresh_answers_a_new_working_pair(self, client):
        first = await tokens(client, "ann")
        answer = await refresh(client, first["refresh_token"])
        assert answer.status_code == 200, answer.text
        second = answer.json()
        assert answer.headers["Cache-Control"] == "no-store"
        assert second["token_type"] == "bearer"
        assert second["refresh_token"] != first["refresh_token"]
        assert await me(client, second["access_token"]) == 200
        third = await refresh(client, second["refresh_token"])
        assert third.status_code == 200, third.text
        assert await me(client, third.json()["access_token"]) == 200

    async def test_a_reused_refresh_token_ends_its_sign_in_only(self, client):
        first = await tokens(client, "ann")
        elsewhere = await tokens(client, "ann")
        second = (await refresh(client, first["refresh_token"])).json()
        replay = await refresh(client, first["refresh_token"])
        assert replay.status_code == 401
        assert (
            replay.json()["message"] == "the refresh token was used before: its sign-in has ended"
        )
        assert 'error="invalid_token"' in replay.headers["WWW-Authenticate"]
        assert (await refresh(client, second["refresh_token"])).status_code == 401
        for access in (first["access_token"], second["access_token"]):
            assert await me(client, access) == 401
        assert await me(client, elsewhere["access_token"]) == 200
        assert (await refresh(client, elsewhere["refresh_token"])).status_code == 200

    async def test_concurrent_refreshes_have_one_winner(self, client):
        token = (await tokens(client, "ann"))["refresh_token"]
        answers = await asyncio.gather(*(refresh(client, token) for _ in range(6)))
        assert sorted(answer.status_code for answer in answers) == [200] + [401] * 5

    async def test_an_access_token_is_no_refresh_token(self, client):
        access = (await tokens(client, "ann"))["access_token"]
        assert (await refresh(client, access)).status_code == 401


class TestEndingTokens:
    async def test_a_new_password_ends_every_token_of_the_user(self, client, admin):
        ann, bob = await tokens(client, "ann"), await tokens(client, "bob")
        assert await me(client, ann["access_token"]) == 200
        answer = await client.put(
            "/api/users/ann/password", json={"password": "a new long password"}, headers=admin
        )
        assert answer.status_code == 204
        assert await me(client, ann["access_token"]) == 401
        assert (await refresh(client, ann["refresh_token"])).status_code == 401
        assert await me(client, bob["access_token"]) == 200
        form = {"username": "ann", "password": "a new long password"}
        assert (await client.post("/api/auth/token", data=form)).status_code == 200

    async def test_deleting_a_user_ends_their_tokens(self, client, admin):
        bob = await tokens(client, "bob")
        assert await me(client, bob["access_token"]) == 200
        assert (await client.delete("/api/users/bob", headers=admin)).status_code == 204
        assert await me(client, bob["access_token"]) == 401
        assert (await refresh(client, bob["refresh_token"])).status_code == 401

    async def test_a_deleted_users_tokens_never_pass_for_the_next_user(self, client, admin):
        # bob has the highest id: SQLite gives it to the next user created after his deletion.
        bob = await tokens(client, "bob")
        assert (await client.delete("/api/users/bob", headers=admin)).status_code == 204
        body = {"name": "carol", "role": "reader", "password": PASSWORD}
        assert (await client.post("/api/users", json=body, headers=admin)).status_code == 201
        assert await me(client, bob["access_token"]) == 401
        assert (await refresh(client, bob["refresh_token"])).status_code == 401


class TestAnotherProcess:
    """A change made through one API process reaches another within the cache bound."""

    async def test_password_changes_and_deletions_reach_it_in_time(self, settings, client, admin):
        ann, bob = await tokens(client, "ann"), await tokens(client, "bob")
        async with serving(settings) as other:
            warm = [ann["access_token"], bob["access_token"]]
            assert [await me(other, credential) for credential in warm] == [200, 200]
            password = {"password": "a new long password"}
            await client.put("/api/users/ann/password", json=password, headers=admin)
            await client.delete("/api/users/bob", headers=admin)
            await refused_within(other, warm, settings.auth_cache_ttl.total_seconds())

    async def test_a_reused_refresh_token_reaches_it_in_time(self, settings, client):
        first = await tokens(client, "ann")
        async with serving(settings) as other:
            assert await me(other, first["access_token"]) == 200
            assert (await refresh(client, first["refresh_token"])).status_code == 200
            assert (await refresh(client, first["refresh_token"])).status_code == 401
            bound = settings.auth_cache_ttl.total_seconds()
            await refused_within(other, [first["access_token"]], bound)
