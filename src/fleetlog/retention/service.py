"""Retention: the rules, a preview of what they let go, and the passes that remove it.

A pass removes, rule by rule, the logs past their rule's age: whole day partitions where every
rule let the day go (PostgreSQL, day_drops.py), batched deletes otherwise (batches.py), each
archived first when FLEETLOG_ARCHIVE_DIR is set. Then it forgets the devices none of whose
logs remain, hands SQLite's freed pages back to the file system, and calls `on_deleted` (the
pipeline retires its cached answers). One pass runs at a time across processes (locks.py).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import delete, exists, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetlog.config import Settings
from fleetlog.errors import FleetlogError
from fleetlog.metrics import RETENTION_PASSES
from fleetlog.retention.archive import Archive
from fleetlog.retention.batches import BatchDeleter
from fleetlog.retention.day_drops import DayDropper, droppable
from fleetlog.retention.locks import RetentionBusy, one_pass, write_turn
from fleetlog.retention.report import Report, Tally, preview_tally
from fleetlog.retention.rule_store import RuleStore
from fleetlog.retention.rules import Rule, due, effective, whole_days_before
from fleetlog.store.engine import connected
from fleetlog.store.tables import devices, log_counts

log = logging.getLogger(__name__)

# Pages (4 KiB) handed back to the file system per SQLite write transaction.
VACUUM_PAGES = 2_048
INCREMENTAL = 2

OnDeleted = Callable[[], Awaitable[None]]


class Retention:
    """Retention over one store.

    Args:
        engine: the store's engine.
        settings: FLEETLOG_RETENTION_DAYS (the default rule's age when none is stored), the
            archive directory, the SQLite path.
        on_deleted: awaited after a pass removed logs.
        clock: the time a pass measures ages from.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        on_deleted: OnDeleted | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.rules = RuleStore(engine)
        self.default_days = settings.retention_days
        self.sqlite_path = settings.sqlite_path
        self.archive = None if settings.archive_dir is None else Archive(settings.archive_dir)
        self.on_deleted = on_deleted
        self.clock = clock

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def effective_rules(self) -> list[Rule]:
        stored = [stored.rule for stored in await self.rules.list()]
        return effective(stored, self.default_days)

    async def preview(self) -> Report:
        """What a pass now would remove, per rule, and the partitions it would drop whole."""
        now, rules = self.clock(), await self.effective_rules()
        async with connected(self.engine) as conn:
            tallies = [await preview_tally(conn, rule, rules, now) for rule in rules]
        report = Report(now, tallies)
        whole = whole_days_before(rules, now)
        if self.postgres and whole is not None:
            report.partitions = sorted((await droppable(self.engine, whole)).values())
        return report

    async def apply(self) -> Report:
        """One pass; RetentionBusy when another process is running one."""
        now, rules = self.clock(), await self.effective_rules()
        report = Report(now, [Tally(rule) for rule in rules])
        try:
            async with one_pass(self.engine, self.sqlite_path):
                await self._apply(report, rules)
        finally:
            if report.rows and self.on_deleted is not None:
                await self.on_deleted()
        return report

    async def _apply(self, report: Report, rules: list[Rule]) -> None:
        if self.archive is not None:
            await asyncio.to_thread(self.archive.remove_leftovers)
        whole = whole_days_before(rules, report.at)
        if self.postgres and whole is not None:
            dropper = DayDropper(self.engine, archive=self.archive)
            for day, name in sorted((await droppable(self.engine, whole)).items()):
                if await dropper.drop(day, name, report.tallies):
                    report.partitions.append(name)
            report.archived += dropper.archived
        deleter = BatchDeleter(self.engine, sqlite_path=self.sqlite_path, archive=self.archive)
        try:
            for tally in report.tallies:
                await deleter.sweep(tally, due(tally.rule, rules, report.at))
        finally:
            report.archived += deleter.archived
        if report.rows:
            await self._forget_devices(rules, report.at)
            if not self.postgres:
                await self._reclaim_space()

    async def _forget_devices(self, rules: list[Rule], now: datetime) -> None:
        """Devices none of whose logs remain, silent for longer than the shortest rule keeps
        logs (so that one heard from just now is never forgotten)."""
        silent_since = max(rule.cutoff(now) for rule in rules)
        counted = exists(
            select(log_counts.c.device_id).where(log_counts.c.device_id == devices.c.device_id)
        )
        statement = delete(devices).where(devices.c.last_seen < silent_since, ~counted)
        async with write_turn(self.engine, self.sqlite_path) as conn:
            await conn.execute(statement)

    async def _reclaim_space(self) -> None:
        """Hand SQLite's free pages back, VACUUM_PAGES per write transaction (incremental
        auto-vacuum, set by store/migrate.py)."""
        async with connected(self.engine) as conn:
            if await conn.scalar(text("PRAGMA auto_vacuum")) != INCREMENTAL:
                return
        left = None
        while True:
            async with write_turn(self.engine, self.sqlite_path) as conn:
                await conn.exec_driver_sql(f"PRAGMA incremental_vacuum({VACUUM_PAGES})")
                now_left = await conn.scalar(text("PRAGMA freelist_count"))
            if not now_left or now_left == left:
                return
            left = now_left

    async def run(self, interval: float, stopping: asyncio.Event) -> None:
        """A pass every `interval` seconds until `stopping` is set; a failed pass is logged
        and the next one tries again."""
        while not stopping.is_set():
            await self.pass_once()
            try:
                await asyncio.wait_for(stopping.wait(), timeout=interval)
            except TimeoutError:
                continue

    async def pass_once(self) -> Report | None:
        try:
            report = await self.apply()
        except RetentionBusy:
            RETENTION_PASSES.labels("busy").inc()
            return None
        except FleetlogError as exc:
            RETENTION_PASSES.labels("failed").inc()
            log.warning("retention pass failed: %s", exc.message)
            return None
        except Exception:
            RETENTION_PASSES.labels("failed").inc()
            log.exception("retention pass failed")
            return None
        RETENTION_PASSES.labels("done").inc()
        if report.rows:
            log.info(
                "retention removed %d logs (%d partitions dropped, %d files archived)",
                report.rows,
                len(report.partitions),
                len(report.archived),
            )
        return report
