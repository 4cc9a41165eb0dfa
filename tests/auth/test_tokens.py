"""JWTs: what is accepted, what is refused, and the secret kept in the data dir."""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from fleetlog.auth.principals import Role
from fleetlog.auth.tokens import TokenIssuer, TokenPair, load_or_create_secret
from fleetlog.auth.users import User
from fleetlog.errors import Unauthorized

SECRET = "x" * 64
USER = User(id=7, name="ann", role=Role.READER, token_version=2, created_at=datetime.now(UTC))


def issuer(**ttls: timedelta) -> TokenIssuer:
    return TokenIssuer(
        SECRET,
        access_ttl=ttls.get("access", timedelta(minutes=15)),
        refresh_ttl=ttls.get("refresh", timedelta(days=7)),
    )


def issue(token_issuer: TokenIssuer, user: User = USER) -> TokenPair:
    return token_issuer.issue(user, session="s" * 22, generation=3)


class TestTokens:
    def test_a_token_carries_the_user_version_and_session(self):
        pair = issue(issuer())
        for token, kind in [(pair.access_token, "access"), (pair.refresh_token, "refresh")]:
            claims = issuer().verify(token, kind=kind)
            assert (claims.user_id, claims.token_version) == (7, 2)
            assert (claims.session, claims.generation) == ("s" * 22, 3)

    def test_kinds_are_not_interchangeable(self):
        pair = issue(issuer())
        with pytest.raises(Unauthorized):
            issuer().verify(pair.refresh_token, kind="access")
        with pytest.raises(Unauthorized):
            issuer().verify(pair.access_token, kind="refresh")

    def test_an_expired_token_is_refused(self):
        token = issue(issuer(access=timedelta(seconds=-1))).access_token
        with pytest.raises(Unauthorized, match="expired"):
            issuer().verify(token, kind="access")

    def test_another_secret_is_refused(self):
        token = issue(
            TokenIssuer("y" * 64, access_ttl=timedelta(minutes=1), refresh_ttl=timedelta(minutes=1))
        )
        with pytest.raises(Unauthorized):
            issuer().verify(token.access_token, kind="access")

    @pytest.mark.parametrize("algorithm", ["none", "HS512"])
    def test_only_hs256_is_accepted(self, algorithm):
        now = datetime.now(UTC)
        claims = {
            "iss": "fleetlog",
            "sub": "7",
            "typ": "access",
            "ver": 2,
            "sid": "s" * 22,
            "gen": 0,
            "iat": now,
            "exp": now + timedelta(minutes=1),
        }
        key = None if algorithm == "none" else SECRET
        token = jwt.encode(claims, key, algorithm=algorithm)
        with pytest.raises(Unauthorized):
            issuer().verify(token, kind="access")

    def test_garbage_is_refused(self):
        with pytest.raises(Unauthorized):
            issuer().verify("not.a.jwt", kind="access")


def resigned(token: str, **claims: Any) -> str:
    """`token` with `claims` put in (None drops one), signed with the right secret."""
    payload = {**jwt.decode(token, SECRET, algorithms=["HS256"], issuer="fleetlog"), **claims}
    kept = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(kept, SECRET, algorithm="HS256")


class TestClaims:
    """A correctly signed token with claims out of type or range is refused, never a crash."""

    def test_resigning_alone_changes_nothing(self):
        token = resigned(issue(issuer()).access_token)
        assert issuer().verify(token, kind="access").user_id == 7

    @pytest.mark.parametrize(
        "claims",
        [
            {"sub": "²"},
            {"sub": "١"},
            {"sub": "٧"},
            {"sub": "7 "},
            {"sub": "07"},
            {"sub": "0"},
            {"sub": "-7"},
            {"sub": "1" + "0" * 30},
            {"sub": "2147483648"},
            {"sub": 10**30},
            {"sub": 7},
            {"ver": "x"},
            {"ver": "2"},
            {"ver": -1},
            {"ver": 2**31},
            {"ver": 10**30},
            {"ver": True},
            {"ver": 2.0},
            {"sid": None},
            {"sid": ""},
            {"sid": 10**30},
            {"sid": "s" * 33},
            {"gen": None},
            {"gen": "x"},
            {"gen": -1},
            {"typ": ["access"]},
            {"typ": "other"},
            {"exp": "9999999999"},
            {"exp": float("inf")},
            {"iat": float("inf")},
            {"nbf": float("inf")},
        ],
        ids=repr,
    )
    def test_odd_claims_are_refused(self, claims):
        with pytest.raises(Unauthorized, match="not valid"):
            issuer().verify(resigned(issue(issuer()).access_token, **claims), kind="access")


class TestSecretFile:
    def test_created_once_private_and_kept(self, tmp_path):
        path = tmp_path / "data" / "jwt-secret"
        first = load_or_create_secret(path)
        assert len(first) >= 48
        assert path.stat().st_mode & 0o777 == 0o600
        assert load_or_create_secret(path) == first

    def test_concurrent_starts_agree_on_one_secret(self, tmp_path):
        path = tmp_path / "jwt-secret"
        seen: list[str] = []
        threads = [
            threading.Thread(target=lambda: seen.append(load_or_create_secret(path)))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(seen)) == 1
        assert [p.name for p in tmp_path.iterdir()] == ["jwt-secret"]
