"""Rate limits through the API: per key (its own or the default), per address where none."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetlog.auth.principals import Role, Scope
from tests.fixtures.auth import PASSWORD, add_key, add_user, bearer, secure_settings, serving


def rate_limit_headers(answer):
    return {
        name: answer.headers[name]
        for name in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    }


class TestPerKey:
    @pytest.fixture
    async def client(self, tmp_path, request):
        settings = secure_settings(tmp_path, key_rate=0.01, key_burst=5)
        self.slow = await add_key(settings, "slow", Scope.READ, rate=0.01, burst=3)
        self.other = await add_key(settings, "other", Scope.READ)
        async with serving(settings) as client:
            yield client

    async def statuses(self, client, key, n):
        return [(await client.get("/api/stats", headers=bearer(key))).status_code for _ in range(n)]

    async def test_a_key_gets_its_burst_then_429(self, client):
        assert await self.statuses(client, self.slow, 4) == [200, 200, 200, 429]

    @pytest.mark.parametrize(
        "path", ["/api/logs/cam-1", "/api/logs?q=pump", "/api/logs/count", "/api/devices"]
    )
    async def test_every_read_counts_once(self, client, path):
        statuses = [
            (await client.get(path, headers=bearer(self.slow))).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]

    async def test_429_says_when_to_retry(self, client):
        await self.statuses(client, self.slow, 3)
        answer = await client.get("/api/stats", headers=bearer(self.slow))
        assert answer.status_code == 429
        headers = rate_limit_headers(answer)
        assert headers["RateLimit-Limit"] == "3"
        assert headers["RateLimit-Remaining"] == "0"
        # One request costs 1/0.01 = 100 s of budget.
        assert 90 <= int(headers["Retry-After"]) <= 100
        assert answer.json() == {
            "error": "rate_limited",
            "message": "over the rate limit of 0.01 requests/s (burst 3)",
        }

    async def test_keys_have_separate_budgets_and_the_default_applies(self, client):
        await self.statuses(client, self.slow, 4)
        assert await self.statuses(client, self.other, 6) == [200] * 5 + [429]

    async def test_refusals_are_counted_in_metrics(self, client):
        before = await key_refusals(client)
        await self.statuses(client, self.slow, 5)
        assert await key_refusals(client) - before == 2


async def key_refusals(client):
    """`fleetlog_rate_limited_total{subject="key"}`, process-wide: compare before and after."""
    metrics = (await client.get("/metrics")).text
    return next(
        (
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "fleetlog_rate_limited_total" and sample.labels == {"subject": "key"}
        ),
        0.0,
    )


async def test_users_are_limited_by_the_default(tmp_path):
    settings = secure_settings(tmp_path, key_rate=0.01, key_burst=2)
    await add_user(settings, "ann", Role.READER)
    async with serving(settings) as client:
        form = {"username": "ann", "password": PASSWORD}
        token = (await client.post("/api/auth/token", data=form)).json()["access_token"]
        statuses = [
            (await client.get("/api/stats", headers=bearer(token))).status_code for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


class TestPerAddress:
    async def test_sign_in_attempts_are_limited_by_address(self, tmp_path):
        settings = secure_settings(tmp_path, address_rate=0.01, address_burst=3)
        await add_user(settings, "ann", Role.ADMIN)
        async with serving(settings) as client:
            form = {"username": "ann", "password": "wrong password"}
            statuses = [
                (await client.post("/api/auth/token", data=form)).status_code for _ in range(4)
            ]
        assert statuses == [401, 401, 401, 429]

    async def test_refused_credentials_are_limited_by_address(self, tmp_path):
        settings = secure_settings(tmp_path, address_rate=0.01, address_burst=2)
        key = await add_key(settings, "good", Scope.READ)
        async with serving(settings) as client:
            guesses = [
                (await client.get("/api/stats", headers=bearer(f"flk_guess{i}"))).status_code
                for i in range(3)
            ]
            # A valid key from the same address still gets through: its own budget counts.
            good = await client.get("/api/stats", headers=bearer(key))
        assert guesses == [401, 401, 429]
        assert good.status_code == 200

    async def test_open_mode_is_not_limited(self, tmp_path):
        settings = secure_settings(tmp_path, key_rate=0.01, key_burst=1, address_burst=1)
        async with serving(settings) as client:
            statuses = {(await client.get("/api/stats")).status_code for _ in range(5)}
        assert statuses == {200}
