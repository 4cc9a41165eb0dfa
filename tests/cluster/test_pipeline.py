"""The pipeline on a real Redis Cluster: every acknowledged log stored exactly once, through
load, a master's SIGKILL and failover, and the migration of a shard's slot."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fleetlog.config import Settings
from fleetlog.errors import StoreUnavailable
from fleetlog.keys import Keys
from tests.fixtures.app import client_of, running_app
from tests.fixtures.cluster import MASTERS, LocalCluster
from tests.fixtures.pipeline import (
    Table,
    assert_stored_once,
    pipeline_settings,
    running_worker,
    shard_of_id,
    wait_for,
)
from tests.fixtures.records import make_batch
from tests.fixtures.replicas import assert_retries_wait_for_replicas

pytestmark = pytest.mark.cluster

KEYS = Keys()
SENDERS = 8
PER_REQUEST = 10
# Failover and healing take a few node timeouts each: room for both, and the drain after.
WITHIN_S = 60.0


@dataclass
class Load:
    """Concurrent senders of batches until stopped, and what they were answered."""

    http: httpx.AsyncClient
    acknowledged: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    without_retry_after: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, sender: int) -> None:
        while not self.stopping.is_set():
            batch = make_batch(PER_REQUEST, device_id=f"device-{sender}")
            answer = await self.http.post("/api/logs/batch", json=batch)
            self.statuses[answer.status_code] += 1
            if answer.status_code == 200:
                self.acknowledged += answer.json()["message_ids"]
            elif answer.status_code == 503:
                self.without_retry_after += "retry-after" not in answer.headers
                await asyncio.sleep(0.01)  # a client backing off, as Retry-After tells it

    def on_shard(self, shard: int) -> int:
        return sum(shard_of_id(message_id) == shard for message_id in self.acknowledged)

    def acknowledged_past(self, count: int) -> Callable[[], Awaitable[bool]]:
        async def condition() -> bool:
            return len(self.acknowledged) >= count

        return condition


@asynccontextmanager
async def loaded(settings: Settings) -> AsyncIterator[Load]:
    """The API in-process, a worker, and the senders running until the block ends."""
    async with running_app(settings) as app, client_of(app) as http, running_worker(settings):
        load = Load(http)
        senders = [asyncio.create_task(load.send(sender)) for sender in range(SENDERS)]
        try:
            yield load
        finally:
            load.stopping.set()
            await asyncio.gather(*senders)
        await wait_for(drained(app), what="the streams drained", within=WITHIN_S)


def drained(app: FastAPI) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        try:
            return bool(await app.state.services.queue.backlog() == 0)
        except StoreUnavailable:  # a cluster still healing answers later
            return False

    return condition


def cluster_settings(cluster_url: str, pg_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return pipeline_settings(cluster_url, pg_url, tmp_path, redis_cluster=True, **overrides)


async def test_logs_spread_over_the_masters_and_are_stored_once(
    redis_cluster: LocalCluster, cluster_url: str, pg_url: str, tmp_path: Path
) -> None:
    settings = cluster_settings(cluster_url, pg_url, tmp_path, stream_shards=8)
    async with loaded(settings) as load:
        await wait_for(load.acknowledged_past(800), what="800 logs acknowledged")

    await assert_stored_once(Table(pg_url), load.acknowledged)
    assert set(load.statuses) == {200}
    shards = {shard_of_id(message_id) for message_id in load.acknowledged}
    assert shards == set(range(8)), "a shard was never written"
    masters = {redis_cluster.master_of(KEYS.stream(shard)).port for shard in shards}
    assert len(masters) > 1


async def test_a_master_killed_under_load_fails_over_and_loses_no_acknowledged_log(
    redis_cluster: LocalCluster, cluster_url: str, pg_url: str, tmp_path: Path
) -> None:
    settings = cluster_settings(
        cluster_url,
        pg_url,
        tmp_path,
        redis_min_replica_acks=1,
        redis_replica_ack_timeout=timedelta(seconds=2),
    )
    victim = redis_cluster.master_of(KEYS.stream(0))
    async with loaded(settings) as load:
        await wait_for(load.acknowledged_past(400), what="logs acknowledged before the kill")
        victim.kill()
        await wait_for(refused(load), what="a 503 while the master is down", within=WITHIN_S)
        await wait_for(failed_over(redis_cluster), what="a replica promoted", within=WITHIN_S)
        # The promoted replica has no replica of its own until the old master rejoins as one:
        # its shards answer 503 meanwhile, then take logs again.
        await asyncio.to_thread(redis_cluster.heal)
        before = load.on_shard(0)
        await wait_for(shard_taken(load, 0, before), what="shard 0 taking logs", within=WITHIN_S)

    assert redis_cluster.master_of(KEYS.stream(0)) is not victim
    assert set(load.statuses) <= {200, 503}, f"answers other than 200 and 503: {load.statuses}"
    assert load.without_retry_after == 0
    await assert_stored_once(Table(pg_url), load.acknowledged)


async def test_a_shard_slot_migrated_while_ingest_runs_loses_nothing(
    redis_cluster: LocalCluster, cluster_url: str, pg_url: str, tmp_path: Path
) -> None:
    settings = cluster_settings(cluster_url, pg_url, tmp_path)
    stream = KEYS.stream(0)
    async with loaded(settings) as load:
        await wait_for(load.acknowledged_past(400), what="logs acknowledged before the move")
        source = redis_cluster.master_of(stream)
        target = next(node for node in redis_cluster.masters() if node is not source)
        await asyncio.to_thread(redis_cluster.migrate_slot, stream, target)
        before = load.on_shard(0)
        await wait_for(shard_taken(load, 0, before), what="shard 0 taking logs", within=WITHIN_S)

    assert redis_cluster.master_of(stream) is target
    assert set(load.statuses) <= {200, 503}, f"answers other than 200 and 503: {load.statuses}"
    assert load.without_retry_after == 0
    await assert_stored_once(Table(pg_url), load.acknowledged)


async def test_a_keyed_retry_waits_for_the_replicas_as_its_first_attempt_did(
    redis_cluster: LocalCluster, cluster_url: str, pg_url: str, tmp_path: Path
) -> None:
    settings = cluster_settings(
        cluster_url,
        pg_url,
        tmp_path,
        redis_min_replica_acks=1,
        redis_replica_ack_timeout=timedelta(milliseconds=300),
    )
    masters = redis_cluster.masters()
    replicas = [node for node in redis_cluster.nodes if node not in masters]
    await assert_retries_wait_for_replicas(settings, replicas)


def failed_over(cluster: LocalCluster) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return len(await asyncio.to_thread(cluster.masters)) == MASTERS

    return condition


def refused(load: Load) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return load.statuses[503] > 0

    return condition


def shard_taken(load: Load, shard: int, before: int) -> Callable[[], Awaitable[bool]]:
    """More of the shard's logs acknowledged than `before`, by some margin of requests."""

    async def condition() -> bool:
        return load.on_shard(shard) >= before + 10 * PER_REQUEST

    return condition
