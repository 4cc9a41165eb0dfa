"""`fleetlog keys`, `fleetlog users` and the secure default of `fleetlog serve`, as run by hand."""

import asyncio
import os
import time

import httpx
import pytest
from typer.testing import CliRunner, Result

from fleetlog.auth.principals import Scope
from fleetlog.cli import app
from tests.fixtures.auth import add_key, bearer, credentials, secure_settings
from tests.fixtures.process import (
    STARTUP_TIMEOUT_S,
    FleetlogProcess,
    free_port,
    running_server,
)


@pytest.fixture(autouse=True)
def environment():
    """The CLI hands settings to server processes through FLEETLOG_*: put them back after."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def fleetlog(*args: str, stdin: str = "") -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def active(data_dir, key):
    async def find():
        async with credentials(secure_settings(data_dir)) as store:
            return await store.keys.active(key) is not None

    return asyncio.run(find())


async def sign_in(data_dir, name, password):
    async with credentials(secure_settings(data_dir)) as store:
        return (await store.sign_in(name, password)).name


def test_keys_create_list_revoke(tmp_path):
    data = str(tmp_path / "data")
    made = fleetlog(
        "keys",
        "--data-dir",
        data,
        "create",
        "--name",
        "cams",
        "--scope",
        "ingest",
        "--device-prefix",
        "cam-",
        "--rate",
        "50",
        "--burst",
        "100",
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.split()[-1]
    assert key.startswith("flk_")
    listed = fleetlog("keys", "--data-dir", data, "list")
    assert "cams" in listed.stdout
    assert "cam-" in listed.stdout
    assert key not in listed.stdout
    assert active(tmp_path / "data", key)
    assert fleetlog("keys", "--data-dir", data, "revoke", "cams").exit_code == 0
    assert not active(tmp_path / "data", key)


def test_keys_revoke_names_exactly_one_key(tmp_path):
    data = str(tmp_path / "data")
    secrets = {}
    for name in ("admin", "1", "other"):
        made = fleetlog("keys", "--data-dir", data, "create", "--name", name, "--scope", "admin")
        assert made.exit_code == 0, made.output
        secrets[name] = made.stdout.split()[-1]
    assert "revoked key 2 1" in fleetlog("keys", "--data-dir", data, "revoke", "1").output
    assert "revoked key 3 other" in fleetlog("keys", "--data-dir", data, "revoke", "id:3").output
    still = {name: active(tmp_path / "data", secret) for name, secret in secrets.items()}
    assert still == {"admin": True, "1": False, "other": False}
    refused = fleetlog("keys", "--data-dir", data, "revoke", "id:x")
    assert refused.exit_code == 1
    assert "id: is followed by a key id" in refused.output


def test_keys_create_refuses_a_bad_request(tmp_path):
    made = fleetlog(
        "keys",
        "--data-dir",
        str(tmp_path),
        "create",
        "--name",
        "r",
        "--scope",
        "admin",
        "--device-prefix",
        "cam-",
    )
    assert made.exit_code == 1
    assert "a device prefix is for ingest and read keys" in made.output
    assert made.stdout == ""


def test_users_create_prompts_then_passwd_and_delete(tmp_path):
    data = str(tmp_path / "data")
    made = fleetlog(
        "users",
        "--data-dir",
        data,
        "create",
        "ann",
        "--role",
        "admin",
        stdin="first good password\nfirst good password\n",
    )
    assert made.exit_code == 0, made.output
    changed = fleetlog(
        "users", "--data-dir", data, "passwd", "ann", "--password", "second good password"
    )
    assert changed.exit_code == 0, changed.output
    assert asyncio.run(sign_in(tmp_path / "data", "ann", "second good password")) == "ann"
    assert fleetlog("users", "--data-dir", data, "delete", "ann").exit_code == 0
    assert fleetlog("users", "--data-dir", data, "delete", "ann").exit_code == 1


def test_serve_refuses_other_addresses_without_credentials(tmp_path):
    served = fleetlog("serve", "--host", "0.0.0.0", "--port", "1", "--data-dir", str(tmp_path))
    assert served.exit_code == 2
    assert "refusing to start" in served.output


def wait_healthy(http: httpx.Client, server: FleetlogProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.proc is not None
        assert server.proc.poll() is None, server.output()
        try:
            if http.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(server.output())


def test_serve_insecure_runs_open_off_loopback_and_says_so(tmp_path):
    port = free_port()
    server = FleetlogProcess(
        [
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--insecure",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env={},
        log_path=tmp_path / "serve.log",
    )
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            wait_healthy(http, server)
            assert http.get("/api/stats").status_code == 200
    finally:
        server.stop()
    assert "OPEN" in server.output()


def test_serve_with_a_key_requires_it(tmp_path):
    data_dir = tmp_path / "data"
    key = asyncio.run(add_key(secure_settings(data_dir), "reader", Scope.READ))
    with running_server(data_dir) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/api/stats").status_code == 401
        assert http.get("/api/stats", headers=bearer(key)).status_code == 200
    assert "credentials required" in server.output()
