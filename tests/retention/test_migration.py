"""Migration 0009 goes down and up again on both stores, and keeps one rule per pair."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from fleetlog.errors import Conflict
from fleetlog.records import LogLevel
from fleetlog.retention.rule_store import RuleStore
from fleetlog.retention.rules import Rule
from fleetlog.store.migrate import migrate
from tests.fixtures.migrations import downgrade_to

if TYPE_CHECKING:
    from tests.fixtures.stores import StoreUnderTest

pytest_plugins = ["tests.fixtures.stores"]


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_the_migration_goes_down_and_up_again(store_under_test: StoreUnderTest) -> None:
    engine = store_under_test.store.engine
    async with engine.begin() as conn:
        await conn.run_sync(downgrade_to, "0008")
        assert "retention_rules" not in await conn.run_sync(tables)
    await migrate(engine)
    rules = RuleStore(engine)
    await rules.add(Rule(None, None, None, 30))
    await rules.add(Rule(None, LogLevel.DEBUG, "cam-", 2))
    for taken in (Rule(None, None, None, 9), Rule(None, LogLevel.DEBUG, "cam-", 9)):
        with pytest.raises(Conflict):
            await rules.add(taken)
    assert [stored.rule.days for stored in await rules.list()] == [30, 2]
