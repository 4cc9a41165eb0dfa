"""Secure by default: open only on loopback with no credential at all, and says so."""

import asyncio
import time

import pytest

from fleetlog.auth.principals import Scope
from tests.fixtures.auth import add_key, bearer, revoke_key, secure_settings, serving
from tests.fixtures.records import make_log


async def test_loopback_with_no_credentials_is_open(tmp_path):
    async with serving(secure_settings(tmp_path)) as client:
        assert (await client.post("/api/log", json=make_log())).status_code == 200
        assert (await client.get("/api/auth/me")).json()["kind"] == "open"
        assert (await client.get("/api/keys")).status_code == 200


async def test_open_mode_answers_loopback_clients_only(tmp_path):
    async with serving(secure_settings(tmp_path), client_host="10.1.2.3") as client:
        assert (await client.post("/api/log", json=make_log())).status_code == 401


async def test_open_mode_still_checks_a_credential_that_is_sent(tmp_path):
    async with serving(secure_settings(tmp_path)) as client:
        answer = await client.get("/api/stats", headers=bearer("flk_not-a-key"))
        assert answer.status_code == 401


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::"])
async def test_other_addresses_are_closed_without_credentials(tmp_path, host):
    async with serving(secure_settings(tmp_path, host=host)) as client:
        assert (await client.post("/api/log", json=make_log())).status_code == 401
        assert (await client.get("/api/stats")).status_code == 401


async def test_insecure_opens_other_addresses_to_any_client(tmp_path):
    settings = secure_settings(tmp_path, host="0.0.0.0", insecure=True)
    async with serving(settings, client_host="203.0.113.9") as client:
        assert (await client.post("/api/log", json=make_log())).status_code == 200


async def test_the_first_key_made_through_the_api_closes_it_at_once(tmp_path):
    async with serving(secure_settings(tmp_path)) as client:
        answer = await client.post("/api/keys", json={"name": "admin", "scope": "admin"})
        assert answer.status_code == 201
        key = answer.json()["key"]
        assert (await client.get("/api/stats")).status_code == 401
        assert (await client.get("/api/stats", headers=bearer(key))).status_code == 200


CACHE_TTL_S = 0.3
# Polling adds up to this much to the bound on a busy machine.
POLL_MARGIN_S = 0.5


async def wait_for_status(client, path, headers, status, *, within_s):
    """Poll until `path` answers `status`; fail if that takes longer than `within_s`."""
    deadline = time.monotonic() + within_s + POLL_MARGIN_S
    while (answer := await client.get(path, headers=headers)).status_code != status:
        assert time.monotonic() < deadline, f"still {answer.status_code} after {within_s}s"
        await asyncio.sleep(0.02)


async def test_a_key_made_by_another_process_closes_it_within_the_cache_bound(tmp_path):
    settings = secure_settings(tmp_path, auth_cache_ttl=CACHE_TTL_S)
    async with serving(settings) as client:
        assert (await client.get("/api/stats")).status_code == 200
        await add_key(settings, "cli", Scope.READ)
        await wait_for_status(client, "/api/stats", {}, 401, within_s=CACHE_TTL_S)


async def test_a_revoked_key_is_refused_within_the_cache_bound(tmp_path):
    settings = secure_settings(tmp_path, auth_cache_ttl=CACHE_TTL_S)
    key = await add_key(settings, "device", Scope.READ)
    async with serving(settings) as client:
        assert (await client.get("/api/stats", headers=bearer(key))).status_code == 200
        await revoke_key(settings, "device")
        await wait_for_status(client, "/api/stats", bearer(key), 401, within_s=CACHE_TTL_S)


async def test_revoking_every_key_does_not_reopen(tmp_path):
    settings = secure_settings(tmp_path, auth_cache_ttl=0)
    await add_key(settings, "only", Scope.READ)
    await revoke_key(settings, "only")
    async with serving(settings) as client:
        assert (await client.get("/api/stats")).status_code == 401


class TestDevicePrefix:
    @pytest.fixture
    async def client(self, tmp_path):
        settings = secure_settings(tmp_path)
        self.key = await add_key(settings, "cams", Scope.INGEST, device_prefix="cam-")
        async with serving(settings) as client:
            yield client

    async def test_devices_under_the_prefix_are_accepted(self, client):
        answer = await client.post(
            "/api/log", json=make_log(device_id="cam-7"), headers=bearer(self.key)
        )
        assert answer.status_code == 200

    async def test_a_device_outside_the_prefix_is_403(self, client):
        answer = await client.post(
            "/api/log", json=make_log(device_id="door-1"), headers=bearer(self.key)
        )
        assert answer.status_code == 403
        assert answer.json()["detail"] == [{"index": 0, "rule": "device_prefix", "prefix": "cam-"}]

    async def test_one_device_outside_refuses_the_whole_batch(self, client):
        logs = [make_log(device_id="cam-1"), make_log(device_id="cam-2"), make_log(device_id="x")]
        answer = await client.post("/api/logs/batch", json={"logs": logs}, headers=bearer(self.key))
        assert answer.status_code == 403
        assert answer.json()["detail"][0]["index"] == 2
