"""What the auth and admin routes receive and answer."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetlog.auth.api_keys import ApiKey
from fleetlog.auth.credentials import MAX_BURST, MAX_RATE, MIN_RATE, NAME_PATTERN
from fleetlog.auth.passwords import MAX_PASSWORD, MIN_PASSWORD
from fleetlog.auth.principals import Principal, Role, Scope
from fleetlog.auth.users import User
from fleetlog.records import MAX_DEVICE_ID, NUL_FREE

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Password = Annotated[str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)]


class TokenForm(BaseModel):
    """OAuth2 token request (RFC 6749): the password grant, or a refresh."""

    grant_type: Literal["password", "refresh_token"] = "password"
    username: Annotated[str, Field(max_length=64), NUL_FREE] = ""
    password: Annotated[str, Field(max_length=1024)] = ""
    refresh_token: Annotated[str, Field(max_length=4096)] = ""
    scope: Annotated[str, Field(max_length=1024)] = ""


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class IdentityOut(BaseModel):
    kind: Literal["key", "user", "open"]
    name: str
    grants: list[Scope]
    device_prefix: str | None

    @classmethod
    def of(cls, principal: Principal) -> "IdentityOut":
        return cls(
            kind=principal.kind,
            name=principal.name,
            grants=sorted(principal.grants),
            device_prefix=principal.device_prefix,
        )


class KeyIn(BaseModel):
    # Stated in the schema too, so generated clients and property tests know the rule.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"scope": {"const": Scope.ADMIN.value}}},
            "then": {"properties": {"device_prefix": {"type": "null"}}},
        }
    )

    name: Name
    scope: Scope
    device_prefix: (
        Annotated[str, Field(min_length=1, max_length=MAX_DEVICE_ID, pattern=r"^[^\x00]+$")] | None
    ) = Field(
        default=None,
        description="Ingest and read keys: the device ids this key may write or read start so",
    )
    rate: Annotated[float, Field(ge=MIN_RATE, le=MAX_RATE)] | None = Field(
        default=None, description="Requests per second; alone, burst is one second's worth"
    )
    burst: Annotated[int, Field(ge=1, le=MAX_BURST)] | None = Field(
        default=None, description="Requests at once; alone, rate is burst per second"
    )


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    hint: str = Field(description="The key's first characters, to recognise it")
    scope: Scope
    device_prefix: str | None
    rate: float | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> "KeyOut":
        return cls.model_validate(key)


class CreatedKeyOut(KeyOut):
    key: str = Field(description="The key itself: shown this once, never stored")


class UserIn(BaseModel):
    name: Name
    role: Role
    password: Password


class PasswordIn(BaseModel):
    password: Password


class UserOut(BaseModel):
    id: int
    name: str
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> "UserOut":
        return cls(id=user.id, name=user.name, role=user.role, created_at=user.created_at)
