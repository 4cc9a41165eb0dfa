"""The syslog TCP listener: framing per connection, the lines of each read shipped together.

Backpressure is TCP's own: while the backlog cannot take the lines of a read, the
connection is not read further, so the sender's window fills and it waits; the same lines
are offered again after the queue's Retry-After, and none is dropped. Only a shutdown while
waiting loses lines, and they are counted as dropped.
"""

import asyncio
import logging
from datetime import UTC, datetime

from fleetlog.errors import Unavailable
from fleetlog.listeners.errors import InvalidLine
from fleetlog.listeners.framing import Frame, Framer
from fleetlog.listeners.outlet import Outlet
from fleetlog.listeners.sources import Allowlist
from fleetlog.listeners.syslog import parse_syslog
from fleetlog.metrics import LINES_TRUNCATED, LISTENER_PAUSES
from fleetlog.shippers.intake import TRUNCATED, Shipped

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024
# A frame may be this much longer than a line: room for the header and structured data.
HEADER_ROOM = 64 * 1024
# The longest wait before offering lines to a full backlog again.
MAX_PAUSE_S = 1.0


def cut_message(message: str, *, skipped: int, max_line_bytes: int) -> str:
    """The message of a line the framer cut: at most `max_line_bytes` with the marker, which
    counts every byte not kept (so the intake, finding it short enough, leaves it alone)."""
    encoded = message.encode()
    room = max_line_bytes - len(TRUNCATED.format(dropped=len(encoded) + skipped).encode())
    kept = encoded[:room].decode(errors="ignore")
    return kept + TRUNCATED.format(dropped=len(encoded) - len(kept.encode()) + skipped)


class SyslogTcp:
    """Serves one TCP connection after another; `close` ends those still open."""

    def __init__(self, outlet: Outlet, allowlist: Allowlist, *, max_line_bytes: int) -> None:
        self.outlet = outlet
        self.allowlist = allowlist
        self.max_line_bytes = max_line_bytes
        self.connections: set[asyncio.Task[None]] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = str(writer.get_extra_info("peername", ("",))[0])
        if not self.allowlist.admits(source):
            self.outlet.count("unlisted_source")
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        try:
            await self.read(reader, source)
        except ConnectionError:
            log.debug("a syslog connection from %s was reset", source)
        except asyncio.CancelledError:
            # `close` ends it as the process stops: a normal end, or asyncio would log the
            # connection's cancelled task as an error.
            log.debug("a syslog connection from %s was closed as fleetlog stops", source)
        finally:
            self.connections.discard(task)
            writer.close()

    async def read(self, reader: asyncio.StreamReader, source: str) -> None:
        framer = Framer(max_frame=self.max_line_bytes + HEADER_ROOM)
        while data := await reader.read(READ_BYTES):
            await self.deliver(framer.feed(data), source)
            if framer.broken is not None:
                self.outlet.invalid(framer.broken)
                return
        await self.deliver(framer.end(), source)

    async def deliver(self, frames: list[Frame], source: str) -> None:
        shipped = self.records(frames, source)
        for at, group in enumerate(self.outlet.groups(shipped)):
            try:
                await self.ship_when_taken(group)
            except asyncio.CancelledError:
                self.outlet.count("dropped", len(shipped) - at * self.outlet.group)
                raise

    def records(self, frames: list[Frame], source: str) -> list[Shipped]:
        now = datetime.now(UTC)
        shipped = []
        for frame in frames:
            if not frame.data:
                continue
            try:
                record = parse_syslog(frame.data, source=source, now=now)
            except InvalidLine as exc:
                self.outlet.invalid(exc.reason)
                continue
            if frame.skipped:
                LINES_TRUNCATED.labels("syslog").inc()
                record.message = cut_message(
                    record.message, skipped=frame.skipped, max_line_bytes=self.max_line_bytes
                )
            shipped.append(record)
        return shipped

    async def ship_when_taken(self, group: list[Shipped]) -> None:
        while True:
            try:
                await self.outlet.ship(group)
                return
            except Unavailable as exc:
                LISTENER_PAUSES.labels(self.outlet.listener).inc()
                await asyncio.sleep(min(exc.retry_after, MAX_PAUSE_S))

    async def close(self) -> None:
        for task in self.connections:
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
