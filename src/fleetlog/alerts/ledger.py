"""What the evaluator writes under its fencing token, and the outbox the webhook jobs read.

Every evaluator write runs in a transaction that first raises `alert_fence.token` to the
writer's token, and only if no newer token wrote before: an evaluator that lost the lock
without knowing it (paused past the lock's expiry) finds its writes refused (StaleFence). The
fence row's lock also makes evaluators' transactions take turns, so each reads the states
the last one wrote: a transition is written, and notified, once.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.alerts.tables import (
    alert_deliveries,
    alert_fence,
    alert_notifications,
    alert_rule_targets,
    alert_rules,
    alert_states,
    alert_targets,
)
from fleetlog.store.engine import connected
from fleetlog.store.logs import as_utc


class StaleFence(Exception):
    """A newer evaluator wrote first: this one's token is stale, and its writes refused."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    kind: str
    query: str
    window_s: int
    comparison: str | None
    threshold: int | None
    group_by: str | None
    for_s: int
    summary: str | None
    target_ids: tuple[int, ...]


@dataclass(slots=True)
class State:
    """An alert of one rule and group: pending, firing, resolved, or inactive (a pending one
    that cleared before it fired)."""

    group: str
    state: str
    value: float
    active_since: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification to write: a transition of one group to `status`."""

    group: str
    status: str
    value: float
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery as its job sends it."""

    delivery_id: int
    key: str
    target: str
    url: str
    secret: str
    format: str
    rule: str
    group: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None


def state_of(row: Any) -> State:
    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    return State(
        group=row.group_key,
        state=row.state,
        value=row.value,
        active_since=utc(row.active_since),
        fired_at=utc(row.fired_at),
        resolved_at=utc(row.resolved_at),
    )


class FencedWrites:
    """The writes of one evaluator transaction, its token checked already."""

    def __init__(self, conn: AsyncConnection, *, token: int, now: datetime) -> None:
        self.conn = conn
        self.token = token
        self.now = now

    async def states(self, rule_id: int) -> dict[str, State]:
        rows = await self.conn.execute(
            select(alert_states).where(alert_states.c.rule_id == rule_id)
        )
        return {row.group_key: state_of(row) for row in rows}

    async def save(self, rule_id: int, state: State, *, known: bool) -> None:
        values = {
            "state": state.state,
            "value": state.value,
            "active_since": state.active_since,
            "fired_at": state.fired_at,
            "resolved_at": state.resolved_at,
            "evaluated_at": self.now,
        }
        if known:
            await self.conn.execute(
                update(alert_states)
                .where(alert_states.c.rule_id == rule_id, alert_states.c.group_key == state.group)
                .values(values)
            )
        else:
            await self.conn.execute(
                insert(alert_states).values(rule_id=rule_id, group_key=state.group, **values)
            )

    async def notify(self, rule: Rule, notice: Notice) -> None:
        """The notification of a transition, and a delivery of it to each of the rule's
        targets (sent by the outbox's next dispatch)."""
        notification_id = await self.conn.scalar(
            insert(alert_notifications)
            .values(
                key=uuid.uuid4().hex,
                rule_id=rule.id,
                rule_name=rule.name,
                group_key=notice.group,
                status=notice.status,
                value=notice.value,
                labels=notice.labels,
                annotations=notice.annotations,
                starts_at=notice.starts_at,
                ends_at=notice.ends_at,
                created_at=self.now,
                fence=self.token,
            )
            .returning(alert_notifications.c.id)
        )
        names = dict(
            (
                await self.conn.execute(
                    select(alert_targets.c.id, alert_targets.c.name).where(
                        alert_targets.c.id.in_(rule.target_ids)
                    )
                )
            ).all()
        )
        if names:
            await self.conn.execute(
                insert(alert_deliveries),
                [
                    {
                        "notification_id": notification_id,
                        "target_id": target_id,
                        "target_name": name,
                        "status": "pending",
                        "attempts": 0,
                        "updated_at": self.now,
                    }
                    for target_id, name in names.items()
                ],
            )

    async def mark_enqueued(self, delivery_ids: Sequence[int]) -> None:
        await self.conn.execute(
            update(alert_deliveries)
            .where(alert_deliveries.c.id.in_(delivery_ids))
            .values(enqueued_at=self.now)
        )


class Ledger:
    """The evaluator's reads and fenced writes, and the deliveries' outbox."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def rules(self) -> list[Rule]:
        async with connected(self.engine) as conn:
            rows = (await conn.execute(select(alert_rules).order_by(alert_rules.c.id))).all()
            links = (await conn.execute(select(alert_rule_targets))).all()
        targets: dict[int, list[int]] = {}
        for rule_id, target_id in links:
            targets.setdefault(rule_id, []).append(target_id)
        return [
            Rule(
                id=row.id,
                name=row.name,
                kind=row.kind,
                query=row.query,
                window_s=row.window_s,
                comparison=row.comparison,
                threshold=row.threshold,
                group_by=row.group_by,
                for_s=row.for_s,
                summary=row.summary,
                target_ids=tuple(sorted(targets.get(row.id, []))),
            )
            for row in rows
        ]

    async def groups(self, rule_id: int) -> list[str]:
        """The groups a rule has states of."""
        async with connected(self.engine) as conn:
            rows = await conn.scalars(
                select(alert_states.c.group_key).where(alert_states.c.rule_id == rule_id)
            )
            return list(rows)

    async def fence(self) -> int:
        """The newest token that wrote."""
        async with connected(self.engine) as conn:
            return int(await conn.scalar(select(alert_fence.c.token)) or 0)

    @asynccontextmanager
    async def fenced(self, token: int, *, now: datetime) -> AsyncIterator[FencedWrites]:
        """A transaction whose writes count only if `token` is the newest; StaleFence else."""
        async with connected(self.engine, transaction=True) as conn:
            raised = await conn.execute(
                update(alert_fence)
                .where(alert_fence.c.id == 1, alert_fence.c.token <= token)
                .values(token=token)
            )
            if raised.rowcount != 1:
                raise StaleFence(f"fencing token {token} is older than the last writer's")
            yield FencedWrites(conn, token=token, now=now)

    async def unsent(self) -> list[int]:
        """Deliveries written but not yet handed to the job queue."""
        async with connected(self.engine) as conn:
            rows = await conn.scalars(
                select(alert_deliveries.c.id)
                .where(alert_deliveries.c.enqueued_at.is_(None))
                .order_by(alert_deliveries.c.id)
            )
            return list(rows)

    async def outgoing(self, delivery_id: int) -> Outgoing | None:
        """A delivery with its notification and target; None when the target is gone."""
        query = (
            select(
                alert_deliveries.c.id,
                alert_deliveries.c.status.label("delivery_status"),
                alert_notifications,
                alert_targets.c.name.label("target"),
                alert_targets.c.url,
                alert_targets.c.secret,
                alert_targets.c.format,
            )
            .join(
                alert_notifications,
                alert_notifications.c.id == alert_deliveries.c.notification_id,
            )
            .join(alert_targets, alert_targets.c.id == alert_deliveries.c.target_id)
            .where(alert_deliveries.c.id == delivery_id)
        )
        async with connected(self.engine) as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Outgoing(
            delivery_id=delivery_id,
            key=row.key,
            target=row.target,
            url=row.url,
            secret=row.secret,
            format=row.format,
            rule=row.rule_name,
            group=row.group_key,
            status=row.status,
            labels=row.labels,
            annotations=row.annotations,
            starts_at=as_utc(row.starts_at),
            ends_at=row.ends_at and as_utc(row.ends_at),
        )

    async def claim(self, delivery_id: int, *, now: datetime, lease: timedelta) -> bool:
        """Whether this job may send the delivery now: not delivered nor dead, and no other
        job sending it (its lease, for `lease`, runs out should that job's process die)."""
        async with connected(self.engine, transaction=True) as conn:
            claimed = await conn.execute(
                update(alert_deliveries)
                .where(
                    alert_deliveries.c.id == delivery_id,
                    alert_deliveries.c.status.in_(("pending", "retrying")),
                    or_(
                        alert_deliveries.c.lease_until.is_(None),
                        alert_deliveries.c.lease_until < now,
                    ),
                )
                .values(lease_until=now + lease)
            )
            return claimed.rowcount == 1

    async def record(
        self, delivery_id: int, *, now: datetime, error: str | None, final: bool
    ) -> None:
        """The outcome of one attempt: delivered, or failed (dead when it was the last)."""
        values: dict[str, Any] = {
            "attempts": alert_deliveries.c.attempts + 1,
            "updated_at": now,
            "last_error": error,
            "lease_until": None,
        }
        if error is None:
            values |= {"status": "delivered", "delivered_at": now}
        else:
            values["status"] = "dead" if final else "retrying"
        async with connected(self.engine, transaction=True) as conn:
            await conn.execute(
                update(alert_deliveries).where(alert_deliveries.c.id == delivery_id).values(values)
            )
