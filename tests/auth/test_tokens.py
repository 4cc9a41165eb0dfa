"""JWTs: what is accepted, what is refused, and the secret kept in the data dir."""

import threading
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from fleetlog.auth.principals import Role
from fleetlog.auth.tokens import TokenIssuer, load_or_create_secret
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


class TestTokens:
    def test_an_access_token_carries_the_user_and_version(self):
        claims = issuer().verify(issuer().issue(USER).access_token, kind="access")
        assert (claims.user_id, claims.token_version) == (7, 2)

    def test_kinds_are_not_interchangeable(self):
        pair = issuer().issue(USER)
        with pytest.raises(Unauthorized):
            issuer().verify(pair.refresh_token, kind="access")
        with pytest.raises(Unauthorized):
            issuer().verify(pair.access_token, kind="refresh")

    def test_an_expired_token_is_refused(self):
        token = issuer(access=timedelta(seconds=-1)).issue(USER).access_token
        with pytest.raises(Unauthorized, match="expired"):
            issuer().verify(token, kind="access")

    def test_another_secret_is_refused(self):
        token = TokenIssuer(
            "y" * 64, access_ttl=timedelta(minutes=1), refresh_ttl=timedelta(minutes=1)
        ).issue(USER)
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
