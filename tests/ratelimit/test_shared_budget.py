"""Two real `fleetlog serve` processes on one Redis share each key's budget."""

import asyncio

import httpx

from fleetlog.auth.principals import Scope
from tests.fixtures.auth import add_key, bearer, secure_settings
from tests.fixtures.process import running_server


async def test_two_api_processes_share_one_budget(tmp_path, redis_url):
    data_dir = tmp_path / "data"
    key = await add_key(secure_settings(data_dir), "shared", Scope.READ, rate=0.01, burst=10)
    env = {"FLEETLOG_RATELIMIT_REDIS_URL": redis_url}
    with (
        running_server(data_dir, env=env) as first,
        running_server(data_dir, env=env) as second,
    ):
        async with httpx.AsyncClient(headers=bearer(key)) as http:
            answers = [
                await http.get(f"{server.url}/api/auth/me")
                for _ in range(8)
                for server in (first, second)
            ]
            metrics = await asyncio.gather(*(http.get(f"{s.url}/metrics") for s in (first, second)))
    statuses = [answer.status_code for answer in answers]
    # Each process alone would allow 10; together they allow 10 in all.
    assert statuses == [200] * 10 + [429] * 6
    refused = [
        line
        for answer in metrics
        for line in answer.text.splitlines()
        if line.startswith('fleetlog_rate_limited_total{subject="key"}')
    ]
    assert sum(float(line.split()[-1]) for line in refused) == 6
