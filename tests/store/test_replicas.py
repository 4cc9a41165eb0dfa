"""Reads go round the replicas, skip one that is down, and fall back to the primary."""

import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert

from fleetlog.config import asyncpg_url
from fleetlog.errors import StoreUnavailable
from fleetlog.localstack import free_port
from fleetlog.store.engine import create_postgres_engine
from fleetlog.store.logs import LogStore
from fleetlog.store.migrate import migrate
from fleetlog.store.tables import logs


async def database_saying(url: str, message: str):
    """A migrated database whose only log (device `d1`) says `message`."""
    engine = create_postgres_engine(asyncpg_url(url))
    await migrate(engine)
    now = datetime.now(UTC)
    row = {
        "device_id": "d1",
        "log_level": "INFO",
        "message": message,
        "log_data": {},
        "created_at": now,
        "received_at": now,
    }
    async with engine.begin() as conn:
        await conn.execute(insert(logs), [row])
    return engine


@pytest.fixture
async def replica_urls(postgres_server):
    names = [f"r_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in names:
        postgres_server.create_database(name)
    yield [postgres_server.dsn(name) for name in names]
    for name in names:
        postgres_server.drop_database(name)


async def answered_by(store: LogStore) -> str:
    (log,) = (await store.latest("d1", limit=10)).logs
    return log.message


def reads(role: str, outcome: str) -> float:
    labels = {"role": role, "outcome": outcome}
    return REGISTRY.get_sample_value("fleetlog_store_reads_total", labels) or 0.0


async def test_replicas_take_turns(database_url, replica_urls):
    primary = await database_saying(database_url, "primary")
    replicas = [await database_saying(url, f"replica {i}") for i, url in enumerate(replica_urls)]
    store = LogStore(primary, replicas=replicas)
    answers = [await answered_by(store) for _ in range(4)]
    assert sorted(answers) == ["replica 0", "replica 0", "replica 1", "replica 1"]
    assert answers[0] != answers[1]
    await store.close()


async def test_a_down_replica_is_skipped(database_url, replica_urls):
    primary = await database_saying(database_url, "primary")
    healthy = await database_saying(replica_urls[0], "replica")
    down = create_postgres_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    store = LogStore(primary, replicas=[down, healthy])
    errors = reads("replica", "error")
    assert [await answered_by(store) for _ in range(4)] == ["replica"] * 4
    assert reads("replica", "error") == errors + 1
    await store.close()


async def test_the_primary_answers_when_no_replica_does(database_url):
    primary = await database_saying(database_url, "primary")
    down = create_postgres_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    store = LogStore(primary, replicas=[down])
    assert await answered_by(store) == "primary"
    await store.close()


async def test_no_database_at_all_is_a_503(database_url):
    down = create_postgres_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    store = LogStore(down)
    with pytest.raises(StoreUnavailable):
        await store.latest("d1", limit=10)
    await store.close()
