"""The UDP listeners (syslog, GELF): datagrams read into records, shipped in groups.

A datagram cannot be held back, so UDP has no backpressure: the records that arrive while a
group is being shipped wait for the next group (that is what groups them under load), up to
a bound; past it, and whenever the backlog or the store refuses a group, they are dropped and
counted as dropped.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fleetlog.errors import PayloadTooLarge, Unavailable
from fleetlog.listeners.chunks import MAGIC, Reassembly
from fleetlog.listeners.errors import InvalidLine
from fleetlog.listeners.gelf import InvalidGelf, inflate, parse_gelf
from fleetlog.listeners.outlet import Outlet
from fleetlog.listeners.sources import Allowlist
from fleetlog.listeners.syslog import parse_syslog
from fleetlog.shippers.intake import Shipped

log = logging.getLogger(__name__)

# Records waiting for the group being shipped, in groups: beyond that they are dropped.
PENDING_GROUPS = 8
# How often unfinished GELF messages are looked at, to give up those past their timeout.
SWEEP_S = 1.0

# A datagram's record, or None when it is not complete yet (a GELF chunk).
Reader = Callable[[bytes, str], Shipped | None]


class DatagramListener(asyncio.DatagramProtocol):
    """Reads each datagram with `read_datagram` and ships the records from its own task."""

    def __init__(self, read_datagram: Reader, outlet: Outlet, allowlist: Allowlist) -> None:
        self.read_datagram = read_datagram
        self.outlet = outlet
        self.allowlist = allowlist
        self.pending: list[Shipped] = []
        self.max_pending = PENDING_GROUPS * outlet.group
        self.wakeup = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        source = str(addr[0])
        if not self.allowlist.admits(source):
            self.outlet.count("unlisted_source")
            return
        try:
            record = self.read_datagram(data, source)
        except InvalidLine as exc:
            self.outlet.invalid(exc.reason)
            return
        if record is None:
            return
        if len(self.pending) >= self.max_pending:
            self.outlet.count("dropped")
            return
        self.pending.append(record)
        self.wakeup.set()

    def error_received(self, exc: Exception) -> None:
        log.warning("%s: %s", self.outlet.listener, exc)

    async def run(self) -> None:
        """Ship what waits, a group at a time, until cancelled."""
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        """Offer each waiting group once; what the backlog refuses is dropped, and counted."""
        while self.pending:
            group = self.pending[: self.outlet.group]
            del self.pending[: self.outlet.group]
            try:
                await self.outlet.ship(group)
            except Unavailable as exc:
                self.outlet.count("dropped", len(group))
                log.debug("%s dropped %d records: %s", self.outlet.listener, len(group), exc)


def syslog_datagrams() -> Reader:
    """RFC 5426: one syslog message per datagram."""

    def read(data: bytes, source: str) -> Shipped:
        return parse_syslog(data, source=source, now=datetime.now(UTC))

    return read


class GelfDatagrams:
    """GELF over UDP: whole messages, or chunks put back together; compressed or not."""

    def __init__(self, outlet: Outlet, *, limit: int, reassembly: Reassembly) -> None:
        self.outlet = outlet
        self.limit = limit
        self.reassembly = reassembly

    def __call__(self, data: bytes, source: str) -> Shipped | None:
        if data.startswith(MAGIC):
            payload, given_up = self.reassembly.add(data)
            self.outlet.count("dropped", given_up)
            if payload is None:
                return None
            data = payload
        try:
            return parse_gelf(inflate(data, limit=self.limit))
        except (InvalidGelf, PayloadTooLarge) as exc:
            raise InvalidLine(exc.message) from None

    async def sweep(self) -> None:
        """Give up, now and then, the messages whose last chunks never came."""
        while True:
            await asyncio.sleep(SWEEP_S)
            self.outlet.count("dropped", self.reassembly.expire())
