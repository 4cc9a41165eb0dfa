"""X-Forwarded-For counts only from trusted proxies: per-address limits against a real server."""

import asyncio

import httpx
import pytest

from fleetlog.auth.principals import Role
from tests.fixtures.auth import add_user, secure_settings
from tests.fixtures.process import Server, running_server

BURST = 3
WRONG = {"username": "ann", "password": "not the password"}


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    asyncio.run(add_user(secure_settings(path), "ann", Role.ADMIN))
    return path


def address_limited(**env: str) -> dict[str, str]:
    return {"FLEETLOG_ADDRESS_RATE": "0.01", "FLEETLOG_ADDRESS_BURST": str(BURST), **env}


def sign_in(server: Server, forwarded_for: str) -> int:
    answer = httpx.post(
        f"{server.url}/api/auth/token", data=WRONG, headers={"X-Forwarded-For": forwarded_for}
    )
    return answer.status_code


def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(data_dir):
    with running_server(data_dir, env=address_limited()) as server:
        statuses = [sign_in(server, f"203.0.113.{i}") for i in range(2 * BURST)]
    assert statuses == [401] * BURST + [429] * BURST


def test_a_trusted_proxy_has_the_forwarded_address_limited(data_dir):
    env = address_limited(FLEETLOG_TRUSTED_PROXIES="127.0.0.1")
    with running_server(data_dir, env=env) as server:
        same_client = [sign_in(server, "203.0.113.7") for _ in range(BURST + 1)]
        other_client = sign_in(server, "203.0.113.8")
    assert same_client == [401] * BURST + [429]
    assert other_client == 401


def test_a_proxy_list_that_is_not_addresses_is_refused_at_start(data_dir):
    server = Server(data_dir, env={"FLEETLOG_TRUSTED_PROXIES": "127.0.0.1,proxy.local"})
    server.start()
    try:
        assert server.proc is not None
        assert server.proc.wait(timeout=30) != 0
    finally:
        server.stop()
    assert "trusted_proxies" in server.output()
