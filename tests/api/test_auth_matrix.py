"""Every protected route × no credential, wrong scope, right scope, revoked key, expired token."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fleetlog.auth.principals import Role, Scope
from fleetlog.config import Settings
from tests.fixtures.auth import (
    PASSWORD,
    add_key,
    add_user,
    bearer,
    expired_token,
    revoke_key,
    secure_settings,
    serving,
    sign_in,
)
from tests.fixtures.records import make_batch, make_log


@dataclass
class World:
    settings: Settings
    client: httpx.AsyncClient
    credentials: dict[str, str]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def victim_key(world: World) -> str:
    name = unique("victim")
    await add_key(world.settings, name, Scope.READ)
    return name


async def victim_user(world: World) -> str:
    name = unique("victim")
    await add_user(world.settings, name, Role.READER)
    return name


Request = tuple[str, str, dict[str, Any]]
Build = Callable[[World], Awaitable[Request]]


def fixed(method: str, path: str, **kwargs: Any) -> Build:
    async def build(world: World) -> Request:
        return method, path, kwargs

    return build


async def revoke_one(world: World) -> Request:
    return "DELETE", f"/api/keys/{await victim_key(world)}", {}


async def delete_one(world: World) -> Request:
    return "DELETE", f"/api/users/{await victim_user(world)}", {}


async def change_password(world: World) -> Request:
    body = {"password": "another long password"}
    return "PUT", f"/api/users/{await victim_user(world)}/password", {"json": body}


async def create_key(world: World) -> Request:
    return "POST", "/api/keys", {"json": {"name": unique("new"), "scope": "ingest"}}


async def create_user(world: World) -> Request:
    body = {"name": unique("new"), "role": "reader", "password": PASSWORD}
    return "POST", "/api/users", {"json": body}


GELF = {"version": "1.1", "host": "device_001", "short_message": "door opened"}


@dataclass(frozen=True)
class Route:
    name: str
    scope: Scope | None
    build: Build
    ok: int = 200


ROUTES = [
    Route("log", Scope.INGEST, fixed("POST", "/api/log", json=make_log())),
    Route("batch", Scope.INGEST, fixed("POST", "/api/logs/batch", json=make_batch(3))),
    Route("gelf", Scope.INGEST, fixed("POST", "/gelf", json=GELF), ok=202),
    Route("device_logs", Scope.READ, fixed("GET", "/api/logs/device_001")),
    Route("stats", Scope.READ, fixed("GET", "/api/stats")),
    Route("me", None, fixed("GET", "/api/auth/me")),
    Route("list_keys", Scope.ADMIN, fixed("GET", "/api/keys")),
    Route("create_key", Scope.ADMIN, create_key, ok=201),
    Route("revoke_key", Scope.ADMIN, revoke_one),
    Route("list_users", Scope.ADMIN, fixed("GET", "/api/users")),
    Route("create_user", Scope.ADMIN, create_user, ok=201),
    Route("set_password", Scope.ADMIN, change_password, ok=204),
    Route("delete_user", Scope.ADMIN, delete_one, ok=204),
    Route("retention_rules", Scope.ADMIN, fixed("GET", "/api/retention/rules")),
    Route("retention_preview", Scope.ADMIN, fixed("GET", "/api/retention/preview")),
]

# Who has which right: keys by scope, users by role.
ALLOWED = {
    Scope.INGEST: ["ingest_key", "admin_key", "admin_user"],
    Scope.READ: ["read_key", "admin_key", "reader_user", "admin_user"],
    Scope.ADMIN: ["admin_key", "admin_user"],
    None: ["ingest_key", "read_key", "admin_key", "reader_user", "admin_user"],
}
REFUSED = {
    Scope.INGEST: ["read_key", "reader_user"],
    Scope.READ: ["ingest_key"],
    Scope.ADMIN: ["ingest_key", "read_key", "reader_user"],
    None: [],
}


@pytest.fixture(scope="module")
async def world(tmp_path_factory) -> AsyncIterator[World]:
    settings = secure_settings(tmp_path_factory.mktemp("matrix") / "data")
    made = {
        f"{scope.value}_key": await add_key(settings, f"{scope.value}-key", scope)
        for scope in Scope
    }
    made["revoked_key"] = await add_key(settings, "revoked", Scope.ADMIN)
    await revoke_key(settings, "revoked")
    for role in Role:
        await add_user(settings, f"{role.value}-user", role)
    made["expired_token"] = await expired_token(settings, "admin-user")
    async with serving(settings) as client:
        for role in Role:
            made[f"{role.value}_user"] = await sign_in(client, f"{role.value}-user")
        yield World(settings, client, made)


async def call(world: World, route: Route, headers: dict[str, str]) -> httpx.Response:
    method, path, kwargs = await route.build(world)
    return await world.client.request(method, path, headers=headers, **kwargs)


def cases() -> list[Any]:
    params = []
    for route in ROUTES:
        params.append(pytest.param(route, None, 401, id=f"{route.name}-none"))
        params.append(pytest.param(route, "revoked_key", 401, id=f"{route.name}-revoked"))
        params.append(pytest.param(route, "expired_token", 401, id=f"{route.name}-expired"))
        params += [
            pytest.param(route, who, 403, id=f"{route.name}-{who}") for who in REFUSED[route.scope]
        ]
        params += [
            pytest.param(route, who, route.ok, id=f"{route.name}-{who}")
            for who in ALLOWED[route.scope]
        ]
    return params


@pytest.mark.parametrize(("route", "who", "status"), cases())
async def test_route(world: World, route: Route, who: str | None, status: int):
    headers = {} if who is None else bearer(world.credentials[who])
    answer = await call(world, route, headers)
    assert answer.status_code == status, answer.text
    if status == 401:
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="fleetlog"')
        assert ('error="invalid_token"' in challenge) == (who is not None)
        assert answer.json()["error"] == "unauthorized"
    if status == 403:
        assert answer.json() == {
            "error": "forbidden",
            "message": answer.json()["message"],
            "detail": [{"rule": "scope", "required": route.scope.value}],
        }


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
async def test_x_api_key_header_works_as_bearer(world: World, route: Route):
    who = "admin_key"
    answer = await call(world, route, {"X-API-Key": world.credentials[who]})
    assert answer.status_code == route.ok, answer.text


@pytest.mark.parametrize("path", ["/health", "/metrics", "/", "/docs", "/redoc", "/openapi.json"])
async def test_service_routes_stay_open(world: World, path: str):
    assert (await world.client.get(path)).status_code == 200


async def test_a_refresh_token_is_not_an_access_token(world: World):
    answer = await world.client.post(
        "/api/auth/token", data={"username": "reader-user", "password": PASSWORD}
    )
    refresh = answer.json()["refresh_token"]
    assert (await world.client.get("/api/auth/me", headers=bearer(refresh))).status_code == 401


async def test_a_token_signed_with_another_secret_is_refused(world: World):
    header, payload, _ = world.credentials["admin_user"].split(".")
    forged = f"{header}.{payload}.c2lnbmF0dXJl"
    assert (await world.client.get("/api/keys", headers=bearer(forged))).status_code == 401
