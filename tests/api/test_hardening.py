"""Input limits every route shares (URL, headers, bodies), and error answers that leak nothing."""

import gzip

import pytest

from fleetlog.api.errors import ErrorBody
from fleetlog.auth.principals import Scope
from tests.fixtures.auth import add_key, bearer, secure_settings, serving
from tests.fixtures.records import make_log

LIMITS = {"max_url_bytes": 2048, "max_header_bytes": 4096, "max_body_bytes": 64 * 1024}


@pytest.fixture
async def secured(tmp_path):
    settings = secure_settings(tmp_path, **LIMITS)
    key = await add_key(settings, "admin", Scope.ADMIN)
    async with serving(settings) as client:
        client.headers.update(bearer(key))
        yield client


def error_of(answer) -> str:
    body = ErrorBody.model_validate(answer.json())
    assert "Traceback" not in body.message
    return body.error


async def test_a_long_url_is_414(secured):
    answer = await secured.get("/api/logs/" + "d" * 40, params={"x": "y" * 4096})
    assert answer.status_code == 414
    assert error_of(answer) == "uri_too_long"


async def test_large_headers_are_431(secured):
    answer = await secured.get("/api/stats", headers={"X-Padding": "p" * 8192})
    assert answer.status_code == 431
    assert error_of(answer) == "headers_too_large"


async def test_a_declared_body_over_the_cap_is_413_on_any_route(secured):
    body = b"{" + b" " * LIMITS["max_body_bytes"] + b"}"
    answer = await secured.post(
        "/api/keys", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert error_of(answer) == "payload_too_large"


async def test_a_chunked_body_over_the_cap_is_413_on_any_route(secured):
    async def chunks():
        for _ in range(LIMITS["max_body_bytes"] // 1024 + 2):
            yield b"a" * 1024

    answer = await secured.post(
        "/api/auth/token",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413


async def test_a_chunked_body_under_the_cap_reaches_the_route(secured):
    async def chunks():
        yield b'{"name": "chunked",'
        yield b' "scope": "read"}'

    answer = await secured.post(
        "/api/keys", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 201


async def test_a_gzip_bomb_with_a_valid_key_is_413(secured):
    # 64 MiB of zeros inflate from ~64 KiB: refused at the cap, never inflated whole.
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < LIMITS["max_body_bytes"]
    answer = await secured.post(
        "/api/logs/batch",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nowhere", {}, 404, "not_found"),
        ("DELETE", "/api/stats", {}, 405, "method_not_allowed"),
        ("DELETE", "/api/keys/nobody", {}, 404, "not_found"),
        ("POST", "/api/keys", {"json": {"name": "x", "scope": "root"}}, 422, "validation_error"),
        ("POST", "/api/keys", {"json": {"name": "!", "scope": "read"}}, 422, "validation_error"),
        (
            "POST",
            "/api/keys",
            {"content": b"{", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_body",
        ),
        (
            "POST",
            "/api/users",
            {"json": {"name": "ann", "role": "reader", "password": "short"}},
            422,
            "validation_error",
        ),
        ("POST", "/api/auth/token", {"data": {"grant_type": "password"}}, 422, "validation_error"),
        ("POST", "/api/auth/token", {"data": {"grant_type": "refresh_token"}}, 401, "unauthorized"),
        ("POST", "/api/log", {"json": make_log(log_level="LOUD")}, 422, "validation_error"),
    ],
)
async def test_errors_have_the_documented_shape(secured, method, path, kwargs, status, code):
    answer = await secured.request(method, path, **kwargs)
    assert answer.status_code == status, answer.text
    assert error_of(answer) == code


async def test_a_key_name_is_taken_once(secured):
    assert (await secured.post("/api/keys", json={"name": "k", "scope": "read"})).status_code == 201
    again = await secured.post("/api/keys", json={"name": "k", "scope": "read"})
    assert again.status_code == 409
    assert error_of(again) == "conflict"
