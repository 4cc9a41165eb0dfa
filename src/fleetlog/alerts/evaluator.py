"""The alert evaluator: every interval, the holder of the lock evaluates every rule and hands
the deliveries it wrote to the job queue.

Each round: take or renew the lock (its fencing token), then per rule read what it measures,
and in one fenced transaction read the rule's states, step each group's alert and write the
new states with a notification per transition. Then the outbox: each delivery not yet handed
to the job queue is enqueued, then marked so (fenced). A crash between the two enqueues it
again next round, and its job sends it once: it skips a delivery marked delivered. So scaling
evaluators up or down neither notifies twice nor skips a transition.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from fleetlog.alerts.ledger import FencedWrites, Ledger, Notice, Rule, StaleFence, State
from fleetlog.alerts.lock import FencedLock
from fleetlog.alerts.measure import Measure, Reading
from fleetlog.alerts.transitions import step
from fleetlog.errors import FleetlogError, StoreUnavailable
from fleetlog.metrics import ALERT_EVALUATIONS, ALERT_NOTIFICATIONS

log = logging.getLogger(__name__)

Enqueue = Callable[[int], Awaitable[None]]


def labels_of(rule: Rule, group: str) -> dict[str, str]:
    labels = {"alertname": rule.name}
    if rule.group_by is not None:
        labels[rule.group_by] = group
    return labels


def summary_of(rule: Rule, group: str, value: float) -> str:
    if rule.summary:
        return rule.summary
    if rule.kind == "silence":
        return f"{group} sent no log for {int(value)} s (silence rule: {rule.window_s // 60} min)"
    where = f" for {group}" if group else ""
    return (
        f"{value:g} logs matching `{rule.query}` in {rule.window_s // 60} min{where} "
        f"({rule.comparison} {rule.threshold})"
    )


def notice_of(rule: Rule, state: State, status: str, *, now: datetime) -> Notice:
    return Notice(
        group=state.group,
        status=status,
        value=state.value,
        labels=labels_of(rule, state.group),
        annotations={
            "summary": summary_of(rule, state.group, state.value),
            "query": rule.query,
            "value": f"{state.value:g}",
        },
        starts_at=state.fired_at or now,
        ends_at=now if status == "resolved" else None,
    )


class Evaluator:
    """Evaluates the rules while it holds the lock; `run` until `stop`."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        measure: Measure,
        lock: FencedLock,
        enqueue: Enqueue,
        interval: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ledger = ledger
        self.measure = measure
        self.lock = lock
        self.enqueue = enqueue
        self.interval = interval.total_seconds()
        self.clock = clock
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.round()
            except StoreUnavailable as exc:
                ALERT_EVALUATIONS.labels("failed").inc()
                log.warning("alerts not evaluated this round: %s", exc.message)
            except Exception:
                ALERT_EVALUATIONS.labels("failed").inc()
                log.exception("alert evaluation failed; trying again next round")
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            except TimeoutError:
                pass
        with contextlib.suppress(StoreUnavailable):  # it expires by itself
            await self.lock.release()

    async def round(self) -> bool:
        """One round if this evaluator holds the lock; whether it did."""
        token = await self.lock.acquire()
        if token is None:
            return False
        fence = await self.ledger.fence()
        if token < fence:
            log.warning("the lock's fencing token %d is behind the store's %d", token, fence)
            await self.lock.raise_past(fence)
            return False
        try:
            await self.evaluate(token)
            await self.dispatch(token)
        except StaleFence as exc:
            ALERT_EVALUATIONS.labels("stale_fence").inc()
            log.warning("alert evaluation stopped: %s", exc)
            return False
        ALERT_EVALUATIONS.labels("done").inc()
        return True

    async def evaluate(self, token: int) -> None:
        """Every rule, under `token`; StaleFence once a newer evaluator wrote."""
        now = self.clock()
        for rule in await self.ledger.rules():
            try:
                known = await self.ledger.groups(rule.id)
                readings = await self.measure.read(rule, now=now, known=known)
            except FleetlogError as exc:
                log.warning("alert rule %r not evaluated: %s", rule.name, exc.message)
                continue
            async with self.ledger.fenced(token, now=now) as writes:
                await self._apply(writes, rule, readings)

    async def _apply(self, writes: FencedWrites, rule: Rule, readings: dict[str, Reading]) -> None:
        states = await writes.states(rule.id)
        hold_for = timedelta(seconds=rule.for_s)
        for group, reading in readings.items():
            before = states.get(group)
            after, status = step(
                before,
                group=group,
                holds=reading.holds,
                value=reading.value,
                now=writes.now,
                hold_for=hold_for,
            )
            if after is None:
                continue
            await writes.save(rule.id, after, known=before is not None)
            if status is not None:
                await writes.notify(rule, notice_of(rule, after, status, now=writes.now))
                ALERT_NOTIFICATIONS.labels(status).inc()
                log.info("alert %s %s%s", rule.name, status, f" ({group})" if group else "")

    async def dispatch(self, token: int) -> None:
        """Hand the deliveries not yet enqueued to the job queue, then mark them (fenced)."""
        unsent = await self.ledger.unsent()
        for delivery_id in unsent:
            await self.enqueue(delivery_id)
        if unsent:
            async with self.ledger.fenced(token, now=self.clock()) as writes:
                await writes.mark_enqueued(unsent)
