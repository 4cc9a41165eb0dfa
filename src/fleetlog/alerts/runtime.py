"""Where alerts run. They need Redis: the lock that elects one evaluator and the job queue
of the webhooks live there.

* Pipeline: every `fleetlog worker` runs an evaluator (the one holding the lock evaluates)
  and dramatiq worker threads that send the webhooks. API processes only manage and list.
* Embedded with `FLEETLOG_REDIS_URL`: every `fleetlog serve` process does the same.
* Embedded without Redis: nothing is evaluated; `POST /api/alerts/rules` says so (409).
* On a Redis Cluster, neither: dramatiq's Redis broker runs scripts on keys it names itself,
  which a cluster spreads over its masters, through a client that knows one node only. The
  processes say so at start-up, and `POST /api/alerts/rules` answers 409.
"""

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio.cluster import RedisCluster

from fleetlog.alerts.deliveries import Deliverer
from fleetlog.alerts.evaluator import Evaluator
from fleetlog.alerts.jobs import WebhookJobs
from fleetlog.alerts.jobs_view import JobsView
from fleetlog.alerts.ledger import Ledger
from fleetlog.alerts.lock import FencedLock
from fleetlog.alerts.measure import Measure
from fleetlog.alerts.store import AlertStore
from fleetlog.config import Settings
from fleetlog.errors import Conflict
from fleetlog.keys import Keys
from fleetlog.redis_client import connect
from fleetlog.store.engine import create_replica_engines, create_store_engine
from fleetlog.store.replicas import ReadEngines
from fleetlog.store.rollups import RollupStore

log = logging.getLogger(__name__)

ON_CLUSTER = (
    "alerts are not evaluated on a Redis Cluster: their webhook jobs run on dramatiq's Redis "
    "broker, which cannot use a cluster; point fleetlog at a standalone Redis to use alerts"
)


class AlertsNeedRedis(Conflict):
    code = "alerts_need_redis"


def lock_ttl(settings: Settings) -> timedelta:
    """Long enough for a round of slow queries, so that a busy holder keeps the lock."""
    return settings.alert_interval * 3 + settings.query_timeout


@asynccontextmanager
async def running_alerts(settings: Settings) -> AsyncIterator[Evaluator | None]:
    """The evaluator and the webhook jobs of this process, running; None without Redis."""
    if settings.redis_url is None:
        yield None
        return
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    if isinstance(redis, RedisCluster):
        log.warning(ON_CLUSTER)
        await redis.aclose()
        yield None
        return
    engine = create_store_engine(settings)
    reads = ReadEngines(engine, create_replica_engines(settings), max_lag=settings.replica_max_lag)
    ledger = Ledger(engine)
    deliverer = Deliverer(
        ledger,
        timeout=settings.alert_webhook_timeout,
        external_url=settings.alert_external_url,
    )
    jobs = WebhookJobs(settings, deliverer)
    owner = f"{settings.instance}-{os.getpid()}-{secrets.token_hex(3)}"
    evaluator = Evaluator(
        ledger=ledger,
        measure=Measure(RollupStore(reads), query_timeout=settings.query_timeout),
        lock=FencedLock(
            redis, keys=Keys(settings.redis_namespace), owner=owner, ttl=lock_ttl(settings)
        ),
        enqueue=jobs.enqueue,
        interval=settings.alert_interval,
    )
    jobs.start()
    task = asyncio.create_task(evaluator.run(), name="fleetlog-alerts")
    try:
        yield evaluator
    finally:
        evaluator.stop()
        await task
        await jobs.stop()
        await deliverer.close()
        await redis.aclose()
        await reads.close()


@dataclass(frozen=True, slots=True)
class Alerting:
    """What the API serves about alerts: rules and targets, states and history, jobs."""

    store: AlertStore
    jobs: JobsView | None
    on_cluster: bool = False

    @property
    def evaluated(self) -> bool:
        return self.jobs is not None

    def check_evaluated(self) -> None:
        if self.on_cluster:
            raise AlertsNeedRedis(
                ON_CLUSTER, detail=[{"field": "FLEETLOG_REDIS_URL", "rule": "alerts_need_redis"}]
            )
        if not self.evaluated:
            raise AlertsNeedRedis(
                "alerts need FLEETLOG_REDIS_URL: the evaluator's lock and the webhook jobs "
                "live in Redis (docs/lifecycle.md)",
                detail=[{"field": "FLEETLOG_REDIS_URL", "rule": "alerts_need_redis"}],
            )


@asynccontextmanager
async def open_alerting(settings: Settings) -> AsyncIterator[Alerting]:
    """The API's alerting; an embedded server with Redis evaluates and delivers too."""
    engine = create_store_engine(settings)
    redis = (
        None
        if settings.redis_url is None
        else connect(settings.redis_url, cluster=settings.redis_cluster)
    )
    on_cluster = isinstance(redis, RedisCluster)
    jobs = (
        None
        if redis is None or on_cluster
        else JobsView(redis, keys=Keys(settings.redis_namespace))
    )
    try:
        if settings.embedded:
            async with running_alerts(settings):
                yield Alerting(AlertStore(engine), jobs, on_cluster)
        else:
            yield Alerting(AlertStore(engine), jobs, on_cluster)
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
