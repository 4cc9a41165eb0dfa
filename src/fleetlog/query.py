"""Queries: a device's newest logs, and the counts behind /api/stats (cached for a stated time).

Embedded, answers come from SQLite (read-your-writes) and stats from a per-process cache. In
Redis mode both are cached in Redis, where the worker's version bumps retire stale answers
(see `cache.py`).
"""

import asyncio
import time
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from fleetlog.cache import QueryCache
from fleetlog.records import LogOut, LogsPage, Stats
from fleetlog.store.logs import LogStore

LOG_LIST = TypeAdapter(list[LogOut])


class LogQuery:
    def __init__(
        self, store: LogStore, *, stats_ttl: timedelta, cache: QueryCache | None = None
    ) -> None:
        self.store = store
        self.stats_ttl = stats_ttl
        self.cache = cache
        self._stats: Stats | None = None
        self._stats_expire = 0.0
        self._stats_lock = asyncio.Lock()

    async def latest(self, device_id: str, *, limit: int) -> LogsPage:
        if self.cache is None:
            data = await self.store.latest(device_id, limit=limit)
            return LogsPage(total=len(data), source="database", data=data)
        version, answer = await self.cache.device_logs(device_id, limit)
        if answer is not None:
            data = LOG_LIST.validate_json(answer)
            return LogsPage(total=len(data), source="cache", data=data)
        # A cached answer lives until the device's next commit: it must come from the primary,
        # or a lagging replica's answer would hide stored logs for the whole TTL.
        data = await self.store.latest(device_id, limit=limit, replicas=False)
        await self.cache.keep_device_logs(
            device_id, limit, version=version, answer=LOG_LIST.dump_json(data)
        )
        return LogsPage(total=len(data), source="database", data=data)

    async def stats(self) -> Stats:
        if self.cache is None:
            return await self._stats_in_process()
        answer = await self.cache.stats()
        if answer is not None:
            return Stats.model_validate_json(answer)
        stats = await self._count()
        await self.cache.keep_stats(stats.model_dump_json().encode())
        return stats

    async def _stats_in_process(self) -> Stats:
        async with self._stats_lock:
            if self._stats is None or time.monotonic() >= self._stats_expire:
                self._stats = await self._count()
                self._stats_expire = time.monotonic() + self.stats_ttl.total_seconds()
            return self._stats

    async def _count(self) -> Stats:
        counts = await self.store.counts()
        return Stats(
            total_logs=counts.total,
            logs_by_level=counts.by_level,
            recent_devices=counts.recent_devices,
            generated_at=datetime.now(UTC),
            max_age_s=int(self.stats_ttl.total_seconds()),
        )
