"""Probes on a timer for /metrics: whether each part this process depends on answers, and the
room left on the data dir's disk. Prometheus alerts on them even when nobody calls /health,
and an unreachable PostgreSQL shows as a 0, not only as a gap in the other series."""

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fleetlog.api.services import Services
from fleetlog.metrics import DATA_DIR_FREE_BYTES, DATA_DIR_SIZE_BYTES, DEPENDENCY_UP

PROBE_INTERVAL_S = 5.0

log = logging.getLogger(__name__)


async def probe(services: Services) -> None:
    """Set the dependency and disk gauges once."""
    for dependency, up in (await services.checks()).items():
        DEPENDENCY_UP.labels(dependency).set(1 if up else 0)
    data_dir = services.settings.data_dir
    # In the pipeline the data dir holds only the JWT secret and may not exist.
    if data_dir.exists():
        usage = shutil.disk_usage(data_dir)
        DATA_DIR_FREE_BYTES.set(usage.free)
        DATA_DIR_SIZE_BYTES.set(usage.total)


async def probe_forever(services: Services, interval: float) -> None:
    while True:
        try:
            await probe(services)
        except Exception:
            log.exception("the dependency probe failed; trying again in %gs", interval)
        await asyncio.sleep(interval)


@asynccontextmanager
async def probing(services: Services, *, interval: float = PROBE_INTERVAL_S) -> AsyncIterator[None]:
    """Probe every `interval` seconds while the context is open."""
    task = asyncio.create_task(probe_forever(services, interval), name="fleetlog-probes")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
