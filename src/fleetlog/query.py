"""Queries: a device's newest logs, and the counts behind /api/stats (cached for a stated time)."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

from fleetlog.records import LogsPage, Stats
from fleetlog.store.logs import LogStore


class LogQuery:
    def __init__(self, store: LogStore, *, stats_ttl: timedelta) -> None:
        self.store = store
        self.stats_ttl = stats_ttl
        self._stats: Stats | None = None
        self._stats_expire = 0.0
        self._stats_lock = asyncio.Lock()

    async def latest(self, device_id: str, *, limit: int) -> LogsPage:
        # Always from the store: a log acknowledged to a client is visible at once.
        data = await self.store.latest(device_id, limit=limit)
        return LogsPage(total=len(data), source="database", data=data)

    async def stats(self) -> Stats:
        async with self._stats_lock:
            if self._stats is None or time.monotonic() >= self._stats_expire:
                counts = await self.store.counts()
                self._stats = Stats(
                    total_logs=counts.total,
                    logs_by_level=counts.by_level,
                    recent_devices=counts.recent_devices,
                    generated_at=datetime.now(UTC),
                    max_age_s=int(self.stats_ttl.total_seconds()),
                )
                self._stats_expire = time.monotonic() + self.stats_ttl.total_seconds()
            return self._stats
