"""Sending one delivery: the job's work, run on the process's event loop."""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from fleetlog.alerts.ledger import Ledger
from fleetlog.alerts.webhooks import body_of, headers_of
from fleetlog.metrics import ALERT_DELIVERIES

log = logging.getLogger(__name__)

LEASE_MARGIN = timedelta(seconds=5)


class DeliveryFailed(Exception):
    """The receiver did not take the delivery (no 2xx): retried, or dead-lettered."""


class Deliverer:
    """Posts deliveries to their targets and records each attempt in the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        timeout: timedelta,
        external_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ledger = ledger
        self.external_url = external_url.rstrip("/")
        self.clock = clock
        # Past the request's own timeout, with room to record its outcome.
        self.lease = timeout * 2 + LEASE_MARGIN
        self.http = httpx.AsyncClient(timeout=timeout.total_seconds(), follow_redirects=False)

    async def deliver(self, delivery_id: int, *, final: bool) -> None:
        """Send the delivery, unless it was delivered already or another copy of its job is
        sending it; DeliveryFailed when the receiver did not answer 2xx."""
        if not await self.ledger.claim(delivery_id, now=self.clock(), lease=self.lease):
            return
        out = await self.ledger.outgoing(delivery_id)
        if out is None:
            await self.ledger.record(
                delivery_id, now=self.clock(), error="the target was removed", final=True
            )
            return
        body = body_of(out, external_url=self.external_url)
        headers = headers_of(out, body=body, timestamp=int(time.time()))
        try:
            response = await self.http.post(out.url, content=body, headers=headers)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self.ledger.record(delivery_id, now=self.clock(), error=error, final=final)
        if error is None:
            ALERT_DELIVERIES.labels("delivered").inc()
            return
        ALERT_DELIVERIES.labels("dead" if final else "retried").inc()
        log.warning(
            "webhook %s to %s failed (%s)%s",
            out.key,
            out.target,
            error,
            ", dead-lettered" if final else "; retried",
        )
        raise DeliveryFailed(error)

    async def close(self) -> None:
        await self.http.aclose()
