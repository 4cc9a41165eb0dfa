"""JWTs for people: a short-lived access token and a longer refresh token, signed HS256."""

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import jwt

from fleetlog.auth.users import User
from fleetlog.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "fleetlog"
SECRET_BYTES = 48

TokenKind = Literal["access", "refresh"]


def load_or_create_secret(path: Path) -> str:
    """The secret kept at `path`, created there (mode 0600) by whichever process comes first."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(SECRET_BYTES))
        file.flush()
        os.fsync(file.fileno())
    try:
        # link() never replaces: concurrent server processes all end up with the first secret.
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    token_version: int
    expires_at: float


class TokenIssuer:
    """Issues and verifies fleetlog's JWTs; only HS256 with this secret is ever accepted."""

    def __init__(self, secret: str, *, access_ttl: timedelta, refresh_ttl: timedelta) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def issue(self, user: User) -> TokenPair:
        now = datetime.now(UTC)
        return TokenPair(
            access_token=self._sign(user, "access", now, self.access_ttl),
            refresh_token=self._sign(user, "refresh", now, self.refresh_ttl),
            expires_in=int(self.access_ttl.total_seconds()),
        )

    def verify(self, token: str, *, kind: TokenKind) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "typ", "ver"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", invalid=True) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is not valid", invalid=True) from None
        if claims["typ"] != kind or not str(claims["sub"]).isdigit():
            raise Unauthorized(f"expected a {kind} token", invalid=True)
        return Claims(
            user_id=int(claims["sub"]),
            token_version=int(claims["ver"]),
            expires_at=float(claims["exp"]),
        )

    def _sign(self, user: User, kind: TokenKind, now: datetime, ttl: timedelta) -> str:
        payload = {
            "iss": ISSUER,
            "sub": str(user.id),
            "name": user.name,
            "role": user.role.value,
            "typ": kind,
            "ver": user.token_version,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(8),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)
