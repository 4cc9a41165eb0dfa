"""Alerting wired by hand on a store of either kind and the test Redis, with a clock the
test moves: the same parts `running_alerts` wires, several evaluators if asked."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from fleetlog.alerts.deliveries import Deliverer
from fleetlog.alerts.evaluator import Evaluator
from fleetlog.alerts.jobs import WebhookJobs
from fleetlog.alerts.ledger import Ledger
from fleetlog.alerts.lock import FencedLock
from fleetlog.alerts.measure import Measure
from fleetlog.alerts.rules import RuleIn, TargetIn
from fleetlog.alerts.store import AlertStore
from fleetlog.alerts.tables import alert_deliveries, alert_notifications
from fleetlog.config import Settings
from fleetlog.keys import Keys
from fleetlog.redis_client import connect
from fleetlog.store.engine import create_store_engine
from fleetlog.store.replicas import ReadEngines
from fleetlog.store.rollups import RollupStore


class AlertRig:
    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        self.settings = settings
        self.now = datetime.now(UTC)
        self.engine = create_store_engine(settings)
        self.store = AlertStore(self.engine)
        self.ledger = Ledger(self.engine)
        self.redis = connect(settings.redis_url)
        self.deliverer = Deliverer(
            self.ledger, timeout=timedelta(seconds=5), external_url="http://fleetlog.test"
        )
        self.jobs = WebhookJobs(settings, self.deliverer)
        self.measure = Measure(
            RollupStore(ReadEngines(self.engine)), query_timeout=timedelta(seconds=10)
        )

    def clock(self) -> datetime:
        return self.now

    def evaluator(self, owner: str, *, ttl: float = 30.0, interval: float = 0.05) -> Evaluator:
        lock = FencedLock(
            self.redis,
            keys=Keys(self.settings.redis_namespace),
            owner=owner,
            ttl=timedelta(seconds=ttl),
        )
        return Evaluator(
            ledger=self.ledger,
            measure=self.measure,
            lock=lock,
            enqueue=self.jobs.enqueue,
            interval=timedelta(seconds=interval),
            clock=self.clock,
        )

    async def target(self, url: str, **options: Any) -> str:
        created = await self.store.create_target(TargetIn(name="ops", url=url, **options))
        return created.secret

    async def rule(self, **fields: Any) -> None:
        await self.store.create_rule(RuleIn.model_validate({"targets": ["ops"], **fields}))

    async def notifications(self) -> list[tuple[str, str]]:
        """(status, group) of every notification, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(alert_notifications.c.status, alert_notifications.c.group_key).order_by(
                    alert_notifications.c.id
                )
            )
            return [(status, group) for status, group in rows]

    async def deliveries(self, status: str) -> int:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(func.count())
                .select_from(alert_deliveries)
                .where(alert_deliveries.c.status == status)
            )
            return int(found or 0)

    async def close(self) -> None:
        await self.jobs.stop()
        await self.deliverer.close()
        await self.redis.aclose()
        await self.engine.dispose()


@asynccontextmanager
async def alert_rig(under_test: Any, redis_url: str, **settings: Any) -> AsyncIterator[AlertRig]:
    """The rig on `under_test`'s store, its webhook jobs running."""
    values = {
        "redis_url": redis_url,
        "alert_min_backoff": timedelta(milliseconds=50),
        "alert_max_backoff": timedelta(milliseconds=200),
        **settings,
    }
    rig = AlertRig(under_test.settings.model_copy(update=values))
    rig.jobs.start()
    try:
        yield rig
    finally:
        await rig.close()
