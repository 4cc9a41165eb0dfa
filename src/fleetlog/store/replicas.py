"""Where reads go: the replicas in turn, one down or too far behind skipped, the primary last."""

import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.errors import StoreUnavailable
from fleetlog.metrics import READS, REPLICA_LAG

log = logging.getLogger(__name__)

T = TypeVar("T")
DOWN_FOR_S = 10.0
RETRY_AFTER_S = 1.0
MAX_LAG = timedelta(seconds=5)
# A replica's lag is learnt at most this often, on the connection of a read that needs it.
PROBE_EVERY_S = 1.0
# Seconds a replica is behind: none while it has replayed all the WAL it received (an idle
# primary sends none, however old its last transaction), else the age of the last transaction
# it replayed, an upper bound. A database in no recovery is not a standby and never behind. A
# standby not streaming (yet) has no received position: it counts as behind by that age too,
# and is unknown (NULL) when it has replayed no transaction since it started.
LAG_SQL = text(
    """
    SELECT CASE
        WHEN NOT pg_is_in_recovery() THEN 0.0
        WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() THEN 0.0
        ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
    END
    """
)


def unreachable(exc: BaseException) -> bool:
    """A failure of the connection, not of the query: another database may well answer."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Lagging(Exception):
    """The replica is further behind the primary than reads accept."""


@dataclass
class Replica:
    """One replica and what was last learnt of it: down until when, how far behind."""

    index: int
    engine: AsyncEngine
    down_until: float = 0.0
    lag: float | None = None
    probed_at: float = -math.inf

    def probe_due(self, now: float) -> bool:
        return now - self.probed_at >= PROBE_EVERY_S


class ReadEngines:
    """The primary and its replicas, for reads that may lag behind it by `max_lag` at most."""

    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[AsyncEngine] = (),
        *,
        down_for: float = DOWN_FOR_S,
        max_lag: timedelta = MAX_LAG,
    ) -> None:
        self.primary = primary
        self.replicas = [Replica(index, engine) for index, engine in enumerate(replicas)]
        self.down_for = down_for
        self.max_lag = max_lag.total_seconds()
        self._turn = itertools.cycle(range(len(self.replicas) or 1))

    def replicas_up(self) -> list[Replica]:
        """Replicas neither down nor last seen too far behind, starting with the next in turn.

        One last seen behind is tried again once its lag is due to be probed again.
        """
        start = next(self._turn)
        now = time.monotonic()
        order = [self.replicas[(start + i) % len(self.replicas)] for i in range(len(self.replicas))]
        return [
            replica
            for replica in order
            if replica.down_until <= now and (self._near(replica) or replica.probe_due(now))
        ]

    async def run(
        self, read: Callable[[AsyncConnection], Awaitable[T]], *, replicas: bool = True
    ) -> T:
        """Run `read` on the first replica that answers, else on the primary; 503 if neither.

        `replicas=False` reads the primary only: for answers that must not lag behind it.
        """
        for replica in self.replicas_up() if replicas else []:
            try:
                answer = await self._read_on_replica(replica, read)
            except Lagging:
                READS.labels("replica", "lagging").inc()
                continue
            except (DBAPIError, OSError) as exc:
                if not unreachable(exc):
                    raise
                self._mark_down(replica, exc)
                continue
            READS.labels("replica", "ok").inc()
            return answer
        try:
            async with self.primary.connect() as conn:
                answer = await read(conn)
        except (DBAPIError, OSError) as exc:
            if not unreachable(exc):
                raise
            READS.labels("primary", "error").inc()
            unavailable = StoreUnavailable(
                "the log store cannot be read", retry_after=RETRY_AFTER_S
            )
            raise unavailable from exc
        READS.labels("primary", "ok").inc()
        return answer

    async def _read_on_replica(
        self, replica: Replica, read: Callable[[AsyncConnection], Awaitable[T]]
    ) -> T:
        async with replica.engine.connect() as conn:
            if replica.probe_due(time.monotonic()):
                await self._probe(replica, conn)
            if not self._near(replica):
                raise Lagging
            return await read(conn)

    async def _probe(self, replica: Replica, conn: AsyncConnection) -> None:
        """Learn how far `replica` is behind; marked first, so concurrent reads do not probe."""
        replica.probed_at = time.monotonic()
        seconds = (await conn.execute(LAG_SQL)).scalar_one()
        was_near = self._near(replica)
        # Clocks of two machines may disagree by a little: never ahead of the primary.
        lag = None if seconds is None else max(0.0, float(seconds))
        replica.lag = lag
        REPLICA_LAG.labels(str(replica.index)).set(math.inf if lag is None else lag)
        if was_near and not self._near(replica):
            log.warning("read replica %d skipped until it catches up: lag %s s", replica.index, lag)
        elif self._near(replica) and not was_near:
            log.info("read replica %d caught up: lag %s s", replica.index, lag)

    def _near(self, replica: Replica) -> bool:
        return replica.lag is not None and replica.lag <= self.max_lag

    def _mark_down(self, replica: Replica, exc: BaseException) -> None:
        replica.down_until = time.monotonic() + self.down_for
        # Its lag is unknown now, and must be learnt again before it serves a read.
        replica.lag, replica.probed_at = None, -math.inf
        REPLICA_LAG.labels(str(replica.index)).set(math.inf)
        READS.labels("replica", "error").inc()
        log.warning("read replica %d skipped for %.0f s: %s", replica.index, self.down_for, exc)

    async def close(self) -> None:
        for engine in [self.primary, *(replica.engine for replica in self.replicas)]:
            await engine.dispose()
