"""Credentials against a real `fleetlog serve`: revoking exactly one key, forged JWT claims,
refresh-token reuse, and how soon a change made elsewhere reaches a running process."""

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from fleetlog.auth.principals import Role, Scope
from fleetlog.config import Settings
from tests.fixtures.auth import PASSWORD, add_key, add_user, bearer, credentials, revoke_key
from tests.fixtures.process import Server, running_server

# The server's own default, as docs/security.md states it.
AUTH_CACHE_TTL_S = 5.0
# One poll round trip on a busy two-core machine, on top of the bound itself.
POLL_MARGIN_S = 1.0


def store_settings(data_dir: Path) -> Settings:
    """Settings to reach the server's SQLite store from this test process."""
    return Settings(_env_file=None, data_dir=data_dir)


@dataclass
class Served:
    server: Server
    data_dir: Path
    http: httpx.Client
    admin_key: str

    def secret(self) -> str:
        return (self.data_dir / "jwt-secret").read_text().strip()

    def sign_in(self, name: str) -> dict[str, Any]:
        answer = self.http.post("/api/auth/token", data={"username": name, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    def refresh(self, token: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": token}
        return self.http.post("/api/auth/token", data=form)

    def me(self, credential: str) -> int:
        return self.http.get("/api/auth/me", headers=bearer(credential)).status_code


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server of two processes for the module; tests make the keys and users they change."""
    data_dir = tmp_path_factory.mktemp("credentials") / "data"
    settings = store_settings(data_dir)
    admin_key = asyncio.run(add_key(settings, "admin", Scope.ADMIN))
    asyncio.run(add_user(settings, "ann", Role.ADMIN))
    env = {"FLEETLOG_ADDRESS_BURST": "100000"}
    with (
        running_server(data_dir, workers=2, env=env) as server,
        httpx.Client(base_url=server.url, timeout=10.0) as http,
    ):
        yield Served(server, data_dir, http, admin_key)


class TestRevokingOneKey:
    def revoked(self, served: Served, *names: str) -> dict[str, bool]:
        """Whether each of these keys is revoked, as the server lists them."""
        answer = served.http.get("/api/keys", headers=bearer(served.admin_key))
        assert answer.status_code == 200, answer.text
        listed = {key["name"]: key["revoked_at"] is not None for key in answer.json()}
        return {name: listed[name] for name in names}

    def create(self, served: Served, name: str) -> dict[str, Any]:
        body = {"name": name, "scope": "read"}
        answer = served.http.post("/api/keys", json=body, headers=bearer(served.admin_key))
        assert answer.status_code == 201, answer.text
        key: dict[str, Any] = answer.json()
        return key

    def revoke(self, served: Served, reference: str) -> httpx.Response:
        return served.http.delete(f"/api/keys/{reference}", headers=bearer(served.admin_key))

    def test_a_numeric_name_revokes_that_key_only(self, served: Served):
        # The admin key has id 1; this key is named "1".
        named_one = self.create(served, "1")
        answer = self.revoke(served, "1")
        assert answer.status_code == 200, answer.text
        assert (answer.json()["id"], answer.json()["name"]) == (named_one["id"], "1")
        assert self.revoked(served, "admin", "1") == {"admin": False, "1": True}

    def test_the_id_prefix_revokes_by_id_only(self, served: Served):
        other = self.create(served, "other")
        self.create(served, str(other["id"]))
        answer = self.revoke(served, f"id:{other['id']}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == "other"
        numbered = str(other["id"])
        assert self.revoked(served, "other", numbered) == {"other": True, numbered: False}

    @pytest.mark.parametrize(
        ("reference", "status"),
        [
            ("id:x", 422),
            ("id:%C2%B2", 422),
            ("id:99999999999999999999", 422),
            ("id:", 422),
            ("%C2%B2", 404),
            ("99999999999999999999", 404),
        ],
    )
    def test_odd_references_are_4xx(self, served: Served, reference: str, status: int):
        answer = self.revoke(served, reference)
        assert answer.status_code == status, answer.text
        if status == 422:
            assert answer.json()["detail"][0]["field"] == "name"
            assert answer.json()["detail"][0]["rule"] == "key_id"
        assert self.revoked(served, "admin") == {"admin": False}


def forge(served: Served, token: str, **claims: Any) -> str:
    """`token` re-signed with the server's own secret, with `claims` put in."""
    payload = jwt.decode(token, served.secret(), algorithms=["HS256"], issuer="fleetlog")
    return jwt.encode({**payload, **claims}, served.secret(), algorithm="HS256")


ODD_CLAIMS = [
    pytest.param({"sub": "²"}, id="sub-superscript"),
    pytest.param({"sub": "١"}, id="sub-arabic-indic-digit"),
    pytest.param({"sub": 10**30}, id="sub-huge-int"),
    pytest.param({"sub": "1" + "0" * 30}, id="sub-huge-digits"),
    pytest.param({"sub": 1}, id="sub-not-a-string"),
    pytest.param({"sub": "-1"}, id="sub-negative"),
    pytest.param({"ver": "x"}, id="ver-letters"),
    pytest.param({"ver": 10**30}, id="ver-huge"),
    pytest.param({"ver": True}, id="ver-bool"),
    pytest.param({"typ": ["access"]}, id="typ-list"),
    pytest.param({"sid": 10**30}, id="sid-huge"),
    pytest.param({"gen": "x"}, id="gen-letters"),
]


class TestForgedClaims:
    @pytest.fixture
    def tokens(self, served: Served) -> dict[str, Any]:
        return served.sign_in("ann")

    def test_the_forger_signs_what_the_server_accepts(self, served: Served, tokens):
        assert served.me(forge(served, tokens["access_token"])) == 200

    @pytest.mark.parametrize("claims", ODD_CLAIMS)
    def test_odd_claims_in_an_access_token_are_401(self, served: Served, tokens, claims):
        answer = served.http.get(
            "/api/auth/me", headers=bearer(forge(served, tokens["access_token"], **claims))
        )
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "unauthorized"

    @pytest.mark.parametrize("claims", ODD_CLAIMS)
    def test_odd_claims_in_a_refresh_token_are_401(self, served: Served, tokens, claims):
        answer = served.refresh(forge(served, tokens["refresh_token"], **claims))
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "unauthorized"


class TestRefreshTokens:
    def test_a_refresh_token_works_once_and_its_reuse_ends_the_sign_in(self, served: Served):
        first = served.sign_in("ann")
        second = served.refresh(first["refresh_token"])
        assert second.status_code == 200, second.text
        second_tokens = second.json()
        assert served.me(second_tokens["access_token"]) == 200
        replay = served.refresh(first["refresh_token"])
        assert replay.status_code == 401, replay.text
        assert served.refresh(second_tokens["refresh_token"]).status_code == 401
        assert_refused_within_bound(served, [first["access_token"], second_tokens["access_token"]])
        assert served.me(served.sign_in("ann")["access_token"]) == 200

    def test_concurrent_refreshes_with_one_token_have_one_winner(self, served: Served):
        token = served.sign_in("ann")["refresh_token"]
        statuses: list[int] = []
        start = threading.Barrier(8)

        def refresh() -> None:
            with httpx.Client(base_url=served.server.url, timeout=10.0) as http:
                start.wait()
                form = {"grant_type": "refresh_token", "refresh_token": token}
                statuses.append(http.post("/api/auth/token", data=form).status_code)

        threads = [threading.Thread(target=refresh) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200] + [401] * 7


def assert_refused_within_bound(served: Served, credentials_: list[str]) -> float:
    """Poll until every credential gets 401; fail if that takes longer than the cache bound."""
    began = time.monotonic()
    pending = set(credentials_)
    while pending:
        pending = {credential for credential in pending if served.me(credential) != 401}
        elapsed = time.monotonic() - began
        assert elapsed <= AUTH_CACHE_TTL_S + POLL_MARGIN_S, f"still accepted after {elapsed:.1f}s"
    return time.monotonic() - began


class TestChangesMadeElsewhere:
    """Changes made by another process reach both server processes within the cache bound."""

    def test_revoked_keys_deleted_users_and_new_passwords_are_refused_in_time(self, served: Served):
        settings = store_settings(served.data_dir)
        key = asyncio.run(add_key(settings, "device", Scope.READ))
        asyncio.run(add_user(settings, "bob", Role.READER))
        asyncio.run(add_user(settings, "carl", Role.READER))
        bob = served.sign_in("bob")
        carl = served.sign_in("carl")
        warm = [key, bob["access_token"], carl["access_token"]]
        # Several requests each, so that both server processes have them cached.
        assert {served.me(credential) for credential in warm * 8} == {200}

        async def change() -> None:
            await revoke_key(settings, "device")
            async with credentials(settings) as store:
                await store.users.delete("bob")
                await store.set_password("carl", "another good password")

        asyncio.run(change())
        assert_refused_within_bound(served, warm)
        assert served.refresh(bob["refresh_token"]).status_code == 401
        assert served.refresh(carl["refresh_token"]).status_code == 401
