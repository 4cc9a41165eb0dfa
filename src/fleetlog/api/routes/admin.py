"""Managing API keys and users: for admins (an admin key or a user with the admin role)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from fleetlog.api.errors import documented
from fleetlog.api.security import AUTH_RESPONSES, GatekeeperDep, require
from fleetlog.auth.credentials import KeyRequest
from fleetlog.auth.principals import Scope
from fleetlog.auth.schemas import CreatedKeyOut, KeyIn, KeyOut, PasswordIn, UserIn, UserOut
from fleetlog.records import NUL_FREE

router = APIRouter(
    tags=["admin"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses={
        **AUTH_RESPONSES,
        **documented(
            {
                400: "The body is not valid JSON",
                404: "No such key or user",
                409: "A key or user of that name exists already",
                422: "A field breaks its rule",
            }
        ),
    },
)

KeyName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The key's name, or `id:` and its id (`id:7`); `7` is the key named 7",
        examples=["cameras", "id:7"],
    ),
    NUL_FREE,
]
UserName = Annotated[str, Path(min_length=1, max_length=64), NUL_FREE]


@router.get("/api/keys", response_model=list[KeyOut])
async def list_keys(gatekeeper: GatekeeperDep) -> list[KeyOut]:
    """Every key ever created, revoked ones included; never the keys themselves."""
    return [KeyOut.of(key) for key in await gatekeeper.credentials.keys.list()]


@router.post("/api/keys", response_model=CreatedKeyOut, status_code=status.HTTP_201_CREATED)
async def create_key(body: KeyIn, gatekeeper: GatekeeperDep) -> CreatedKeyOut:
    """Create a key; the answer holds the key itself, the only time it is ever shown."""
    request = KeyRequest(**body.model_dump())
    key, secret = await gatekeeper.credentials.create_key(request)
    gatekeeper.forget()
    return CreatedKeyOut(**KeyOut.of(key).model_dump(), key=secret)


@router.delete("/api/keys/{name}", response_model=KeyOut)
async def revoke_key(name: KeyName, gatekeeper: GatekeeperDep) -> KeyOut:
    """Revoke one key, named by its name or as `id:<id>`; the answer is that key.

    It is refused here at once, and by every other API process within the cache bound.
    """
    key = await gatekeeper.credentials.revoke_key(name)
    gatekeeper.forget()
    return KeyOut.of(key)


@router.get("/api/users", response_model=list[UserOut])
async def list_users(gatekeeper: GatekeeperDep) -> list[UserOut]:
    return [UserOut.of(user) for user in await gatekeeper.credentials.users.list()]


@router.post("/api/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, gatekeeper: GatekeeperDep) -> UserOut:
    user = await gatekeeper.credentials.create_user(
        body.name, role=body.role, password=body.password
    )
    gatekeeper.forget()
    return UserOut.of(user)


@router.put("/api/users/{name}/password", status_code=status.HTTP_204_NO_CONTENT)
async def set_password(name: UserName, body: PasswordIn, gatekeeper: GatekeeperDep) -> Response:
    """Change a password; the user's tokens issued before stop working."""
    await gatekeeper.credentials.set_password(name, body.password)
    gatekeeper.forget()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/api/users/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(name: UserName, gatekeeper: GatekeeperDep) -> Response:
    await gatekeeper.credentials.users.delete(name)
    gatekeeper.forget()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
