"""Webhook deliveries as dramatiq jobs on the pipeline's Redis.

The broker keeps dramatiq's own keys under `<namespace>-jobs` (keys.py). A failed delivery
is retried by dramatiq's Retries middleware with exponential backoff (jittered, from
`FLEETLOG_ALERT_MIN_BACKOFF` doubling up to `FLEETLOG_ALERT_MAX_BACKOFF`); after
`FLEETLOG_ALERT_MAX_RETRIES` retries the message goes to dramatiq's dead-letter set
(`webhooks.XQ`, kept 7 days), listed at `GET /api/admin/jobs`, and its delivery is marked
dead. dramatiq runs the actor on worker threads; each hands the delivery to this process's
event loop, where the store and the HTTP client live, and waits for it.
"""

import asyncio
import logging

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Retries, ShutdownNotifications, TimeLimit
from redis import Redis, RedisError

from fleetlog.alerts.deliveries import Deliverer, DeliveryFailed
from fleetlog.config import Settings
from fleetlog.errors import StoreUnavailable
from fleetlog.keys import Keys

log = logging.getLogger(__name__)

QUEUE = "webhooks"
ACTOR = "deliver_webhook"
THREADS = 4
# How long stopping waits for deliveries in flight (each bounded by the webhook timeout).
STOP_TIMEOUT_MS = 30_000


def milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def open_broker(settings: Settings) -> RedisBroker:
    """The broker of this process, with the retry policy of the settings."""
    assert settings.redis_url is not None
    retries = Retries(
        max_retries=settings.alert_max_retries,
        min_backoff=milliseconds(settings.alert_min_backoff.total_seconds()),
        max_backoff=milliseconds(settings.alert_max_backoff.total_seconds()),
    )
    middleware = [TimeLimit(), ShutdownNotifications(), retries, CurrentMessage()]
    return RedisBroker(  # type: ignore[no-untyped-call]
        client=Redis.from_url(settings.redis_url),
        namespace=Keys(settings.redis_namespace).jobs,
        middleware=middleware,
    )


class WebhookJobs:
    """The delivery actor of one process: `enqueue` sends a job; between `start` and `stop`
    dramatiq worker threads run jobs (from every process) here."""

    def __init__(self, settings: Settings, deliverer: Deliverer) -> None:
        self.deliverer = deliverer
        self.max_retries = settings.alert_max_retries
        self.broker = open_broker(settings)
        self.actor = dramatiq.actor(broker=self.broker, actor_name=ACTOR, queue_name=QUEUE)(
            self._run
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker: dramatiq.Worker | None = None

    async def enqueue(self, delivery_id: int) -> None:
        try:
            await asyncio.to_thread(self.actor.send, delivery_id)
        except RedisError as exc:
            raise StoreUnavailable("the job queue cannot be reached", retry_after=1.0) from exc

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.worker = dramatiq.Worker(self.broker, worker_threads=THREADS)
        self.worker.start()

    async def stop(self) -> None:
        """Let the jobs in flight finish (their deliveries run on this loop), then close."""
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop, STOP_TIMEOUT_MS)
        self.broker.close()

    def _run(self, delivery_id: int) -> None:
        """The actor: deliver on the event loop; a failure is a Retry (no traceback logged),
        which the Retries middleware backs off or, past the last retry, dead-letters."""
        assert self.loop is not None
        message = CurrentMessage.get_current_message()
        retries = 0 if message is None else int(message.options.get("retries", 0))
        final = retries >= self.max_retries
        delivery = self.deliverer.deliver(delivery_id, final=final)
        try:
            asyncio.run_coroutine_threadsafe(delivery, self.loop).result()
        except DeliveryFailed as exc:
            raise dramatiq.Retry(str(exc)) from None
