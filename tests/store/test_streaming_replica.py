"""Reads on a real hot standby (pg_basebackup -R): they go to it, answer as the primary does
once it has replayed, and skip it while it is stopped or too far behind."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetlog.config import Settings, asyncpg_url
from fleetlog.store.engine import create_postgres_engine
from fleetlog.store.replicas import PROBE_EVERY_S, ReadEngines
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import (
    migrate_database,
    pipeline_settings,
    running_worker,
    sample,
    wait_for,
)
from tests.fixtures.records import make_log
from tests.fixtures.servers import TEMP_PREFIX, PostgresServer
from tests.fixtures.standby import REPLICATION, StandbyServer

DATABASE = "fleetlog"
SMALL_LAG = timedelta(seconds=0.3)


@pytest.fixture(scope="module")
def primary() -> Iterator[PostgresServer]:
    with PostgresServer(REPLICATION, temp_prefix=TEMP_PREFIX) as server:
        server.create_database(DATABASE)
        asyncio.run(migrate_database(server.dsn(DATABASE)))
        yield server


@pytest.fixture(scope="module")
def module_standby(primary: PostgresServer) -> Iterator[StandbyServer]:
    with StandbyServer(primary, temp_prefix=TEMP_PREFIX) as server:
        yield server


@pytest.fixture
def standby(module_standby: StandbyServer) -> StandbyServer:
    """The module's standby, running and replaying, though a test before stopped or paused it."""
    module_standby.start()
    module_standby.psql("SELECT pg_wal_replay_resume()")
    module_standby.catch_up()
    return module_standby


@pytest.fixture
async def reads(primary: PostgresServer, standby: StandbyServer) -> AsyncIterator[ReadEngines]:
    """Reads of the standby, skipped for a moment only when it fails, and if behind by more
    than SMALL_LAG."""
    engines = ReadEngines(
        create_postgres_engine(asyncpg_url(primary.dsn(DATABASE))),
        [create_postgres_engine(asyncpg_url(standby.dsn(DATABASE)))],
        down_for=0.2,
        max_lag=SMALL_LAG,
    )
    yield engines
    await engines.close()


async def on_standby(conn: AsyncConnection) -> bool:
    """A read whose answer says which database gave it."""
    return bool((await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar_one())


def write(primary: PostgresServer) -> None:
    """A transaction on the primary, for the standby to replay."""
    primary.psql("CREATE TABLE written (); DROP TABLE written")


def reads_of(role: str, outcome: str) -> float:
    return sample("fleetlog_store_reads_total", role=role, outcome=outcome)


def answered_by_standby(reads: ReadEngines, *, expected: bool = True):
    async def condition() -> bool:
        return await reads.run(on_standby) is expected

    return condition


async def test_the_lag_is_probed_at_most_once_a_second_not_on_every_read(reads):
    probes = []

    def count_probes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "pg_last_wal_replay_lsn" in statement:
            probes.append(statement)

    replica = reads.replicas[0].engine.sync_engine
    event.listen(replica, "before_cursor_execute", count_probes)
    started = time.monotonic()
    for _ in range(50):
        await reads.run(on_standby)
    elapsed = time.monotonic() - started
    assert 1 <= len(probes) <= 1 + elapsed / PROBE_EVERY_S


async def test_a_stopped_standby_is_skipped_and_used_again_once_restarted(reads, standby):
    await wait_for(answered_by_standby(reads), what="reads on the standby")
    standby.stop("immediate")
    errors = reads_of("replica", "error")
    assert not await reads.run(on_standby)
    assert reads_of("replica", "error") == errors + 1

    standby.start()
    await wait_for(answered_by_standby(reads), what="reads on the restarted standby")


async def test_a_lagging_standby_is_skipped_until_it_catches_up(reads, primary, standby):
    # An idle primary sends no WAL: a standby that replayed all of it is not behind, however
    # long ago the last transaction was.
    write(primary)
    standby.catch_up()
    await wait_for(
        lambda: asyncio.to_thread(standby.replayed_before, SMALL_LAG),
        what="the standby's last transaction to be older than the bound",
    )
    await wait_for(answered_by_standby(reads), what="reads on the idle standby")

    standby.psql("SELECT pg_wal_replay_pause()")
    write(primary)
    lagging = reads_of("replica", "lagging")
    await wait_for(answered_by_standby(reads, expected=False), what="the primary to answer instead")
    assert reads_of("replica", "lagging") > lagging
    # Measured from the last transaction replayed, not unknown (+Inf).
    assert SMALL_LAG.total_seconds() < sample("fleetlog_replica_lag_seconds", replica="0") < 60

    standby.psql("SELECT pg_wal_replay_resume()")
    await wait_for(answered_by_standby(reads), what="reads on the caught-up standby")
    assert sample("fleetlog_replica_lag_seconds", replica="0") <= SMALL_LAG.total_seconds()


def settings_of(primary: PostgresServer, tmp_path: Path, redis_url: str, **more: Any) -> Settings:
    return pipeline_settings(redis_url, primary.dsn(DATABASE), tmp_path, **more)


async def answers(http: httpx.AsyncClient) -> dict[str, Any]:
    """A search, counts, the fleet view and a device's second page: the reads a replica serves
    (a device's first page is cached, so read from the primary)."""
    found = (await http.get("/api/logs", params={"q": "valve"})).json()
    counted = await http.get("/api/logs/count", params={"q": "device:rep-*", "group_by": "level"})
    fleet = await http.get("/api/devices", params={"q": "device:rep-*"})
    first = (await http.get("/api/logs/rep-1", params={"limit": 2})).json()
    second = await http.get("/api/logs/rep-1", params={"limit": 2, "cursor": first["next_cursor"]})
    return {
        "search": found["data"],
        "counts": counted.json(),
        # How long a device has been silent depends on when it is asked, not on the database.
        "fleet": [{**device, "silent_for_s": None} for device in fleet.json()["data"]],
        "device": second.json()["data"],
    }


async def test_reads_through_the_standby_answer_as_the_primary(
    primary, standby, redis_url, tmp_path
):
    # A bound no replay here comes near, so that every read of the replica below is served.
    replicated = settings_of(
        primary,
        tmp_path,
        redis_url,
        database_replica_urls=[standby.dsn(DATABASE)],
        replica_max_lag="60",
    )
    logs = [
        make_log(device_id=f"rep-{i % 3}", log_level=level, message=f"valve {i} stuck")
        for i, level in enumerate(["INFO", "ERROR", "WARNING"] * 4)
    ]
    async with running_app(replicated) as app, client_of(app) as http:
        assert app.state.services.store.reads.max_lag == 60.0
        async with running_worker(replicated):
            assert (await http.post("/api/logs/batch", json={"logs": logs})).status_code == 200

            async def stored() -> bool:
                return await app.state.services.queue.backlog() == 0

            await wait_for(stored, what="the logs stored on the primary")
        await asyncio.to_thread(standby.catch_up)
        served = reads_of("replica", "ok")
        through_replica = await answers(http)
        assert reads_of("replica", "ok") >= served + 4
        metrics = (await http.get("/metrics")).text
        assert 'fleetlog_replica_lag_seconds{replica="0"}' in metrics

    async with running_app(settings_of(primary, tmp_path, redis_url)) as app:
        async with client_of(app) as http:
            assert await answers(http) == through_replica
    assert len(through_replica["search"]) == len(logs)
    assert sum(bucket["count"] for bucket in through_replica["counts"]["buckets"]) == len(logs)
    assert len(through_replica["fleet"]) == 3
    assert len(through_replica["device"]) == 2
