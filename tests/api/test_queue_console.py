"""The queue console and dead letters on the admin API, in Redis mode and embedded."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fleetlog.auth.principals import Scope
from fleetlog.config import Settings
from fleetlog.keys import Keys
from tests.fixtures.auth import add_key, bearer, secure_settings, serving
from tests.fixtures.pipeline import open_consumer
from tests.fixtures.records import make_batch

KEYS = Keys()


@dataclass
class Console:
    settings: Settings
    client: httpx.AsyncClient
    admin: dict[str, str]
    reader: dict[str, str]


@pytest.fixture
async def console(redis_url: str, pg_url: str, tmp_path: Path) -> AsyncIterator[Console]:
    settings = secure_settings(tmp_path / "data", redis_url=redis_url, database_url=pg_url)
    admin = bearer(await add_key(settings, "admin", Scope.ADMIN))
    reader = bearer(await add_key(settings, "reader", Scope.READ))
    async with serving(settings) as client:
        yield Console(settings, client, admin, reader)


async def a_dead_letter(console: Console) -> str:
    """Accept a batch, then dead-letter its entry as the worker does when the store refuses it."""
    answer = await console.client.post(
        "/api/logs/batch", json=make_batch(2, device_id="cam-3"), headers=console.admin
    )
    shard = int(answer.json()["message_ids"][0].split("-")[0])
    consumer = open_consumer(console.settings, "worker-1")
    try:
        [entry] = await consumer.read(shard, count=10, block_ms=10)
        assert await consumer.dead_letter(entry, "refused by the store", reason="rejected")
    finally:
        await consumer.close()
    listed = await console.client.get("/api/admin/deadletters", headers=console.admin)
    dead_id: str = listed.json()["entries"][-1]["id"]
    return dead_id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/queue"),
        ("GET", "/api/admin/deadletters"),
        ("GET", "/api/admin/deadletters/0-1-0"),
        ("POST", "/api/admin/deadletters/replay"),
        ("DELETE", "/api/admin/deadletters"),
    ],
)
async def test_only_admins_see_the_queue(console: Console, method: str, path: str) -> None:
    answer = await console.client.request(method, path, headers=console.reader, json={"all": True})
    assert answer.status_code == 403
    assert answer.json()["detail"] == [{"rule": "scope", "required": "admin"}]


async def test_the_status_per_shard(console: Console) -> None:
    await console.client.post("/api/logs/batch", json=make_batch(3), headers=console.admin)
    answer = await console.client.get("/api/admin/queue", headers=console.admin)
    assert answer.status_code == 200
    status = answer.json()
    assert [shard["shard"] for shard in status["shards"]] == [0, 1, 2, 3]
    assert (status["backlog"], status["pending"], status["dead_letters"]) == (3, 0, 0)


async def test_dead_letters_listed_shown_replayed_once_and_purged(console: Console) -> None:
    dead_id = await a_dead_letter(console)
    admin = console.admin

    shown = (await console.client.get(f"/api/admin/deadletters/{dead_id}", headers=admin)).json()
    assert (shown["reason"], shown["error"], shown["logs"]) == (
        "rejected",
        "refused by the store",
        2,
    )
    assert {record["device_id"] for record in shown["records"]} == {"cam-3"}

    body = {"ids": [dead_id]}
    first = await console.client.post("/api/admin/deadletters/replay", json=body, headers=admin)
    assert list(first.json()["replayed"]) == [dead_id]
    second = await console.client.post("/api/admin/deadletters/replay", json=body, headers=admin)
    assert second.json() == {"replayed": {}, "missing": [dead_id]}
    status = (await console.client.get("/api/admin/queue", headers=admin)).json()
    assert (status["backlog"], status["dead_letters"]) == (2, 0)

    await a_dead_letter(console)
    purged = await console.client.delete("/api/admin/deadletters", headers=admin)
    assert purged.json() == {"purged": 1}
    gone = await console.client.get(f"/api/admin/deadletters/{dead_id}", headers=admin)
    assert gone.status_code == 404


async def test_bad_ids_and_bodies_are_4xx_naming_the_field(console: Console) -> None:
    admin = console.admin
    answer = await console.client.get("/api/admin/deadletters/7-x", headers=admin)
    assert answer.status_code == 400
    assert answer.json()["detail"][0]["field"] == "id"
    answer = await console.client.post(
        "/api/admin/deadletters/replay", json={"ids": ["0-1-0", "12-1-0"]}, headers=admin
    )
    assert answer.status_code == 400
    assert answer.json()["detail"][0] == {
        "field": "ids[1]",
        "rule": "shard",
        "message": "there is no shard 12 of 4",
    }
    answer = await console.client.post("/api/admin/deadletters/replay", json={}, headers=admin)
    assert answer.status_code == 422


async def test_embedded_fleetlog_answers_409(tmp_path: Path) -> None:
    settings = secure_settings(tmp_path / "data")
    admin = bearer(await add_key(settings, "admin", Scope.ADMIN))
    async with serving(settings) as client:
        for path in ("/api/admin/queue", "/api/admin/deadletters"):
            answer = await client.get(path, headers=admin)
            assert answer.status_code == 409
            assert "embedded" in answer.json()["message"]
