"""Migration 0010 goes down and up again on both stores."""

from sqlalchemy import inspect

from fleetlog.store.migrate import migrate
from tests.fixtures.migrations import downgrade_to

pytest_plugins = ["tests.fixtures.stores"]

TABLES = {
    "alert_targets",
    "alert_rules",
    "alert_rule_targets",
    "alert_states",
    "alert_notifications",
    "alert_deliveries",
    "alert_fence",
}


async def test_the_alert_tables_go_down_and_up_again(store_under_test):
    engine = store_under_test.store.engine

    def tables(sync) -> set[str]:
        return set(inspect(sync).get_table_names())

    async with engine.begin() as conn:
        assert await conn.run_sync(tables) >= TABLES
        await conn.run_sync(downgrade_to, "0009")
        assert not await conn.run_sync(tables) & TABLES
    await migrate(engine)
    async with engine.connect() as conn:
        assert await conn.run_sync(tables) >= TABLES
