"""Where reads go: the replicas in turn, a failing one skipped for a while, the primary last."""

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetlog.errors import StoreUnavailable
from fleetlog.metrics import READS

log = logging.getLogger(__name__)

T = TypeVar("T")
DOWN_FOR_S = 10.0
RETRY_AFTER_S = 1.0


def unreachable(exc: BaseException) -> bool:
    """A failure of the connection, not of the query: another database may well answer."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class ReadEngines:
    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[AsyncEngine] = (),
        *,
        down_for: float = DOWN_FOR_S,
    ) -> None:
        self.primary = primary
        self.replicas = list(replicas)
        self.down_for = down_for
        self._turn = itertools.cycle(range(len(self.replicas) or 1))
        self._down_until: dict[int, float] = {}

    def replicas_up(self) -> list[AsyncEngine]:
        """Replicas not marked down, starting with the next in turn."""
        start = next(self._turn)
        now = time.monotonic()
        order = [(start + i) % len(self.replicas) for i in range(len(self.replicas))]
        return [self.replicas[i] for i in order if self._down_until.get(i, 0.0) <= now]

    async def run(
        self, read: Callable[[AsyncConnection], Awaitable[T]], *, replicas: bool = True
    ) -> T:
        """Run `read` on the first replica that answers, else on the primary; 503 if neither.

        `replicas=False` reads the primary only: for answers that must not lag behind it.
        """
        for replica in self.replicas_up() if replicas else []:
            try:
                answer = await self._read_on(replica, read)
            except (DBAPIError, OSError) as exc:
                if not unreachable(exc):
                    raise
                self._mark_down(replica, exc)
                continue
            READS.labels("replica", "ok").inc()
            return answer
        try:
            answer = await self._read_on(self.primary, read)
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

    @staticmethod
    async def _read_on(engine: AsyncEngine, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with engine.connect() as conn:
            return await read(conn)

    def _mark_down(self, engine: AsyncEngine, exc: BaseException) -> None:
        index = self.replicas.index(engine)
        self._down_until[index] = time.monotonic() + self.down_for
        READS.labels("replica", "error").inc()
        log.warning("read replica %d skipped for %.0f s: %s", index, self.down_for, exc)

    async def close(self) -> None:
        for engine in [self.primary, *self.replicas]:
            await engine.dispose()
