"""JWTs for people: a short-lived access token and a longer refresh token, signed HS256."""

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import jwt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from fleetlog.auth.users import User
from fleetlog.errors import Unauthorized
from fleetlog.store.tables import MAX_ID

ALGORITHM = "HS256"
ISSUER = "fleetlog"
SECRET_BYTES = 48
# ASCII digits only: str.isdigit() also takes "²" and "١", and int() reads the latter.
USER_ID = re.compile(r"[1-9][0-9]{0,9}")

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


def user_id_of(subject: object) -> int:
    """The user id a token's `sub` names: a string of ASCII digits, nothing else."""
    if not isinstance(subject, str) or USER_ID.fullmatch(subject) is None:
        raise ValueError("sub is not a user id")
    return int(subject)


Counter = Annotated[int, Field(ge=0, le=MAX_ID)]


class Claims(BaseModel):
    """The claims fleetlog reads from a token it signed, each held to its type and range.

    A correctly signed token may still carry anything (a leaked secret, an older version):
    whatever does not fit is refused here, before it reaches a query.
    """

    model_config = ConfigDict(strict=True, frozen=True)

    user_id: Annotated[int, BeforeValidator(user_id_of), Field(ge=1, le=MAX_ID, alias="sub")]
    kind: Annotated[TokenKind, Field(alias="typ")]
    token_version: Annotated[Counter, Field(alias="ver")]
    session: Annotated[str, Field(min_length=1, max_length=32, alias="sid")]
    generation: Annotated[Counter, Field(alias="gen")]
    expires_at: Annotated[float, Field(alias="exp")]


class TokenIssuer:
    """Issues and verifies fleetlog's JWTs; only HS256 with this secret is ever accepted."""

    def __init__(self, secret: str, *, access_ttl: timedelta, refresh_ttl: timedelta) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def session_end(self) -> datetime:
        """Until when a session issuing tokens now must live: past the last one's expiry."""
        return datetime.now(UTC) + max(self.access_ttl, self.refresh_ttl)

    def issue(self, user: User, *, session: str, generation: int) -> TokenPair:
        """Both tokens of `generation` of a session; only the refresh token moves it on."""
        now = datetime.now(UTC)
        family: dict[str, str | int] = {"sid": session, "gen": generation}
        return TokenPair(
            access_token=self._sign(user, "access", expires=now + self.access_ttl, family=family),
            refresh_token=self._sign(
                user, "refresh", expires=now + self.refresh_ttl, family=family
            ),
            expires_in=int(self.access_ttl.total_seconds()),
        )

    def verify(self, token: str, *, kind: TokenKind) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "typ", "ver", "sid", "gen"]},
            )
            claims = Claims.model_validate(payload)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", invalid=True) from None
        except (jwt.InvalidTokenError, ValidationError):
            raise Unauthorized("the token is not valid", invalid=True) from None
        if claims.kind != kind:
            raise Unauthorized(f"expected a {kind} token", invalid=True)
        return claims

    def _sign(
        self, user: User, kind: TokenKind, *, expires: datetime, family: dict[str, str | int]
    ) -> str:
        payload = {
            **family,
            "iss": ISSUER,
            "sub": str(user.id),
            "name": user.name,
            "role": user.role.value,
            "typ": kind,
            "ver": user.token_version,
            "iat": datetime.now(UTC),
            "exp": expires,
            "jti": secrets.token_urlsafe(8),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)
