"""The `retention_rules` table: the rules an admin manages, read by every retention pass."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.errors import Conflict, NotFound
from fleetlog.records import LogLevel
from fleetlog.retention.rules import Rule
from fleetlog.store.engine import connected
from fleetlog.store.logs import as_utc
from fleetlog.store.tables import retention_rules


@dataclass(frozen=True, slots=True)
class StoredRule:
    rule: Rule
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> "StoredRule":
        level = row["log_level"]
        rule = Rule(
            id=row["id"],
            log_level=None if level is None else LogLevel(level),
            device_prefix=row["device_prefix"],
            days=row["days"],
        )
        return cls(rule, as_utc(row["created_at"]))


def values_of(rule: Rule) -> dict[str, Any]:
    level = None if rule.log_level is None else rule.log_level.value
    return {"log_level": level, "device_prefix": rule.device_prefix, "days": rule.days}


def taken(rule: Rule) -> Conflict:
    return Conflict(
        f"a rule for {rule.describe()} exists already: change it instead",
        detail=[
            {
                "field": "body",
                "rule": "unique",
                "message": "one rule per level and device prefix",
            }
        ],
    )


class RuleStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list(self) -> list[StoredRule]:
        query = select(retention_rules).order_by(retention_rules.c.id)
        async with connected(self.engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [StoredRule.from_row(row) for row in rows]

    async def add(self, rule: Rule) -> StoredRule:
        values = values_of(rule) | {"created_at": datetime.now(UTC)}
        statement = insert(retention_rules).values(values).returning(retention_rules)
        return await self._write(statement, rule)

    async def replace(self, rule_id: int, rule: Rule) -> StoredRule:
        statement = (
            update(retention_rules)
            .where(retention_rules.c.id == rule_id)
            .values(values_of(rule))
            .returning(retention_rules)
        )
        return await self._write(statement, rule, rule_id=rule_id)

    async def remove(self, rule_id: int) -> StoredRule:
        statement = (
            delete(retention_rules)
            .where(retention_rules.c.id == rule_id)
            .returning(retention_rules)
        )
        return await self._write(statement, None, rule_id=rule_id)

    async def _write(self, statement: Any, rule: Rule | None, *, rule_id: int = 0) -> StoredRule:
        try:
            async with connected(self.engine, transaction=True) as conn:
                row = (await conn.execute(statement)).mappings().one_or_none()
        except IntegrityError:
            assert rule is not None
            raise taken(rule) from None
        if row is None:
            raise NotFound(f"no retention rule numbered {rule_id}")
        return StoredRule.from_row(row)
