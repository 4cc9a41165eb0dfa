"""A server process asked to stop: out of traffic at once, and its live tails ended."""

import asyncio

from tests.fixtures.pipeline import wait_for


async def test_ready_says_503_once_draining(app, client):
    assert (await client.get("/ready")).status_code == 200
    app.state.services.drain()
    answer = await client.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["checks"]["accepting"] is False
    assert (await client.get("/health")).status_code == 200


async def test_draining_ends_the_open_tails(app, client):
    services = app.state.services
    tail = asyncio.create_task(client.get("/api/tail"))

    async def subscribed() -> bool:
        return services.tail.open == 1

    await wait_for(subscribed, what="the tail to open")
    services.drain()
    answer = await asyncio.wait_for(tail, timeout=30)
    assert answer.status_code == 200
    assert services.tail.open == 0
