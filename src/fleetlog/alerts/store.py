"""Alert rules and webhook targets in the store, as the admin API and CLI manage them, and
the states and notifications `GET /api/alerts` lists."""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.alerts.rules import (
    CreatedTargetOut,
    DeliveryOut,
    NotificationOut,
    RuleIn,
    RuleOut,
    StateOut,
    TargetIn,
    TargetOut,
    rule_values,
)
from fleetlog.alerts.tables import (
    alert_deliveries,
    alert_notifications,
    alert_rule_targets,
    alert_rules,
    alert_states,
    alert_targets,
)
from fleetlog.errors import Conflict, InvalidPayload, NotFound
from fleetlog.store.engine import connected
from fleetlog.store.logs import as_utc

SECRET_BYTES = 32


def rule_out(row: Any, targets: list[str]) -> RuleOut:
    return RuleOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        query=row.query,
        window=row.window_s,
        comparison=row.comparison,
        threshold=row.threshold,
        group_by=row.group_by,
        for_=row.for_s,
        summary=row.summary,
        targets=targets,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def target_out(row: Any) -> TargetOut:
    return TargetOut(
        id=row.id,
        name=row.name,
        url=row.url,
        format=row.format,
        created_at=as_utc(row.created_at),
    )


def unknown_targets(missing: Sequence[tuple[int, str]]) -> InvalidPayload:
    detail = [
        {
            "loc": ["body", "targets", index],
            "field": f"targets[{index}]",
            "rule": "unknown_target",
            "message": f"no target is named {name!r}",
        }
        for index, name in missing
    ]
    return InvalidPayload("the rule names targets that do not exist", detail=detail)


class AlertStore:
    """Rules, targets, states and history, on the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_target(self, target: TargetIn) -> CreatedTargetOut:
        secret = "whsec_" + secrets.token_urlsafe(SECRET_BYTES)
        values = {**target.model_dump(), "secret": secret, "created_at": datetime.now(UTC)}
        try:
            async with connected(self.engine, transaction=True) as conn:
                row = (
                    await conn.execute(
                        insert(alert_targets).values(values).returning(alert_targets)
                    )
                ).one()
        except IntegrityError:
            raise Conflict(f"a target named {target.name!r} exists already") from None
        return CreatedTargetOut(**target_out(row).model_dump(), secret=secret)

    async def targets(self) -> list[TargetOut]:
        async with connected(self.engine) as conn:
            rows = await conn.execute(select(alert_targets).order_by(alert_targets.c.name))
        return [target_out(row) for row in rows]

    async def remove_target(self, name: str) -> None:
        """Remove a target no rule names any more (a 409 naming those that do)."""
        async with connected(self.engine, transaction=True) as conn:
            target_id = await conn.scalar(
                select(alert_targets.c.id).where(alert_targets.c.name == name)
            )
            if target_id is None:
                raise NotFound(f"no target is named {name!r}")
            users = (
                await conn.scalars(
                    select(alert_rules.c.name)
                    .join(alert_rule_targets, alert_rule_targets.c.rule_id == alert_rules.c.id)
                    .where(alert_rule_targets.c.target_id == target_id)
                    .order_by(alert_rules.c.name)
                )
            ).all()
            if users:
                raise Conflict(f"rules still send to {name!r}: {', '.join(users)}")
            await conn.execute(delete(alert_targets).where(alert_targets.c.id == target_id))

    async def create_rule(self, rule: RuleIn) -> RuleOut:
        now = datetime.now(UTC)
        try:
            async with connected(self.engine, transaction=True) as conn:
                target_ids = await self._target_ids(conn, rule.targets)
                values = {**rule_values(rule), "created_at": now, "updated_at": now}
                row = (
                    await conn.execute(insert(alert_rules).values(values).returning(alert_rules))
                ).one()
                await self._link(conn, row.id, target_ids)
        except IntegrityError:
            raise Conflict(f"a rule named {rule.name!r} exists already") from None
        return rule_out(row, rule.targets)

    async def replace_rule(self, name: str, rule: RuleIn) -> RuleOut:
        """Replace a rule's definition; its alerts stay, and resolve at the next evaluation
        if the new definition no longer holds for them."""
        try:
            async with connected(self.engine, transaction=True) as conn:
                rule_id = await self._rule_id(conn, name)
                target_ids = await self._target_ids(conn, rule.targets)
                values = {**rule_values(rule), "updated_at": datetime.now(UTC)}
                row = (
                    await conn.execute(
                        update(alert_rules)
                        .where(alert_rules.c.id == rule_id)
                        .values(values)
                        .returning(alert_rules)
                    )
                ).one()
                await conn.execute(
                    delete(alert_rule_targets).where(alert_rule_targets.c.rule_id == rule_id)
                )
                await self._link(conn, rule_id, target_ids)
        except IntegrityError:
            raise Conflict(f"a rule named {rule.name!r} exists already") from None
        return rule_out(row, rule.targets)

    async def rules(self, name: str | None = None) -> list[RuleOut]:
        query = select(alert_rules).order_by(alert_rules.c.name)
        if name is not None:
            query = query.where(alert_rules.c.name == name)
        async with connected(self.engine) as conn:
            rows = (await conn.execute(query)).all()
            links = await conn.execute(
                select(alert_rule_targets.c.rule_id, alert_targets.c.name)
                .join(alert_targets, alert_targets.c.id == alert_rule_targets.c.target_id)
                .order_by(alert_targets.c.name)
            )
        names: dict[int, list[str]] = {}
        for rule_id, target in links:
            names.setdefault(rule_id, []).append(target)
        if name is not None and not rows:
            raise NotFound(f"no rule is named {name!r}")
        return [rule_out(row, names.get(row.id, [])) for row in rows]

    async def remove_rule(self, name: str) -> None:
        """Remove a rule and its alerts (without resolved notifications); its history stays."""
        async with connected(self.engine, transaction=True) as conn:
            rule_id = await self._rule_id(conn, name)
            await conn.execute(delete(alert_states).where(alert_states.c.rule_id == rule_id))
            await conn.execute(
                delete(alert_rule_targets).where(alert_rule_targets.c.rule_id == rule_id)
            )
            await conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))

    async def states(self) -> list[StateOut]:
        query = (
            select(alert_states, alert_rules.c.name)
            .join(alert_rules, alert_rules.c.id == alert_states.c.rule_id)
            .where(alert_states.c.state != "inactive")
            .order_by(alert_rules.c.name, alert_states.c.group_key)
        )
        async with connected(self.engine) as conn:
            rows = await conn.execute(query)
        return [
            StateOut(
                rule=row.name,
                group=row.group_key,
                state=row.state,
                value=row.value,
                active_since=row.active_since and as_utc(row.active_since),
                fired_at=row.fired_at and as_utc(row.fired_at),
                resolved_at=row.resolved_at and as_utc(row.resolved_at),
                evaluated_at=as_utc(row.evaluated_at),
            )
            for row in rows
        ]

    async def history(self, *, limit: int) -> list[NotificationOut]:
        """The newest `limit` notifications, each with its deliveries."""
        notifications = (
            select(alert_notifications)
            .order_by(alert_notifications.c.id.desc())
            .limit(limit)
            .subquery()
        )
        async with connected(self.engine) as conn:
            rows = (await conn.execute(select(notifications))).all()
            deliveries = await conn.execute(
                select(alert_deliveries)
                .where(alert_deliveries.c.notification_id.in_([row.id for row in rows]))
                .order_by(alert_deliveries.c.target_name)
            )
        by_notification: dict[int, list[DeliveryOut]] = {}
        for each in deliveries:
            by_notification.setdefault(each.notification_id, []).append(
                DeliveryOut(
                    target=each.target_name,
                    status=each.status,
                    attempts=each.attempts,
                    last_error=each.last_error,
                    delivered_at=each.delivered_at and as_utc(each.delivered_at),
                )
            )
        return [
            NotificationOut(
                id=row.id,
                key=row.key,
                rule=row.rule_name,
                group=row.group_key,
                status=row.status,
                value=row.value,
                starts_at=as_utc(row.starts_at),
                ends_at=row.ends_at and as_utc(row.ends_at),
                created_at=as_utc(row.created_at),
                deliveries=by_notification.get(row.id, []),
            )
            for row in sorted(rows, key=lambda row: row.id, reverse=True)
        ]

    async def count_rules(self) -> int:
        async with connected(self.engine) as conn:
            return int(await conn.scalar(select(func.count()).select_from(alert_rules)) or 0)

    @staticmethod
    async def _rule_id(conn: AsyncConnection, name: str) -> int:
        rule_id = await conn.scalar(select(alert_rules.c.id).where(alert_rules.c.name == name))
        if rule_id is None:
            raise NotFound(f"no rule is named {name!r}")
        return int(rule_id)

    @staticmethod
    async def _target_ids(conn: AsyncConnection, names: list[str]) -> list[int]:
        if not names:
            return []
        rows = await conn.execute(
            select(alert_targets.c.name, alert_targets.c.id).where(alert_targets.c.name.in_(names))
        )
        found: dict[str, int] = {row.name: row.id for row in rows}
        missing = [(index, name) for index, name in enumerate(names) if name not in found]
        if missing:
            raise unknown_targets(missing)
        return [found[name] for name in names]

    @staticmethod
    async def _link(conn: AsyncConnection, rule_id: int, target_ids: list[int]) -> None:
        if target_ids:
            await conn.execute(
                insert(alert_rule_targets),
                [{"rule_id": rule_id, "target_id": target_id} for target_id in target_ids],
            )
