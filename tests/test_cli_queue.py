"""`fleetlog status` and `fleetlog deadletters`, as an operator runs them against Redis."""

import asyncio
import json

import pytest
from typer.testing import CliRunner, Result

from fleetlog.cli import app
from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import RedisStreamQueue
from fleetlog.redis_client import connect
from tests.fixtures.pipeline import make_record, open_consumer, pipeline_settings

KEYS = Keys()


def fleetlog(*args: str, stdin: str = "") -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def dead_lettered(redis_url: str, tmp_path) -> str:
    """One accepted request, dead-lettered as the worker does; its dead letter's id."""
    settings = pipeline_settings(redis_url, "postgresql://unused", tmp_path)

    async def make() -> str:
        queue = RedisStreamQueue(
            connect(redis_url), keys=KEYS, shards=4, max_backlog=100, retry_after=1
        )
        await queue.start()
        await queue.put([make_record(device_id="cam-5", message="lens fogged")] * 2)
        await queue.close()
        consumer = open_consumer(settings, "worker-1")
        try:
            [entry] = await consumer.read(0, count=10, block_ms=10)
            await consumer.dead_letter(entry, "refused by the store", reason="rejected")
            [(dead_id, _)] = await consumer.client.xrange(KEYS.dead(0))
        finally:
            await consumer.close()
        return f"0-{dead_id.decode()}"

    return asyncio.run(make())


@pytest.fixture
def pipeline_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FLEETLOG_REDIS_URL", redis_url)
    monkeypatch.setenv("FLEETLOG_DATABASE_URL", "postgresql://unused")
    return redis_url


def test_status_and_dead_letters_from_redis_with_no_api(pipeline_env: str, tmp_path) -> None:
    dead_id = dead_lettered(pipeline_env, tmp_path)

    status = fleetlog("status", "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["dead_letters"] == 1
    table = fleetlog("status")
    assert "stored/s" in table.output
    assert "worker-1" in table.output

    listed = json.loads(fleetlog("deadletters", "list", "--json").output)
    assert [letter["id"] for letter in listed["entries"]] == [dead_id]
    shown = fleetlog("deadletters", "show", dead_id)
    assert "refused by the store" in shown.output
    assert "lens fogged" in shown.output

    assert "1 replayed" in fleetlog("deadletters", "replay", dead_id).output
    again = fleetlog("deadletters", "replay", dead_id)
    assert "0 replayed" in again.output
    assert json.loads(fleetlog("status", "--json").output)["backlog"] == 2


def test_purge_asks_first(pipeline_env: str, tmp_path) -> None:
    dead_lettered(pipeline_env, tmp_path)
    refused = fleetlog("deadletters", "purge", stdin="n\n")
    assert refused.exit_code == 1
    assert json.loads(fleetlog("status", "--json").output)["dead_letters"] == 1
    purged = fleetlog("deadletters", "purge", "--yes")
    assert "purged 1 dead letters" in purged.output
    assert json.loads(fleetlog("status", "--json").output)["dead_letters"] == 0


def test_a_bad_id_exits_2_naming_it(pipeline_env: str) -> None:
    answer = fleetlog("deadletters", "show", "12-1-0")
    assert answer.exit_code == 2
    assert "no shard 12" in answer.output
    assert fleetlog("deadletters", "replay").exit_code == 2


def test_embedded_fleetlog_has_no_queue_to_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETLOG_DATABASE_URL", raising=False)
    answer = fleetlog("status")
    assert answer.exit_code == 2
    assert "embedded" in answer.output
