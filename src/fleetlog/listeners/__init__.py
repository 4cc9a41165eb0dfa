"""The syslog (UDP and TCP on one port) and GELF (UDP) listeners of an API process.

They run in the API's lifespan and write through the same `Ingest` as the HTTP routes: the
same rules, the same queue (the embedded store or the pipeline's streams). Sockets are bound
with SO_REUSEPORT, so each process of `fleetlog serve --workers N` listens on the same port and
the kernel spreads datagrams and connections over them.
"""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fleetlog.config import Settings
from fleetlog.ingest import Ingest
from fleetlog.listeners.chunks import Reassembly
from fleetlog.listeners.outlet import Outlet
from fleetlog.listeners.sources import Allowlist
from fleetlog.listeners.tcp import SyslogTcp
from fleetlog.listeners.udp import DatagramListener, GelfDatagrams, syslog_datagrams

log = logging.getLogger(__name__)

# Room in the receive buffer for a burst of datagrams while a group is shipped.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


@dataclass(slots=True)
class Listeners:
    """The ports listened on (a port given as 0 is the one the system chose)."""

    syslog_port: int | None = None
    gelf_port: int | None = None


@asynccontextmanager
async def open_listeners(settings: Settings, ingest: Ingest) -> AsyncIterator[Listeners]:
    """Listen on the configured ports until the context ends; none configured, none opened."""
    listeners = Listeners()
    async with AsyncExitStack() as stack:
        if settings.syslog_port is not None:
            listeners.syslog_port = await open_syslog(
                settings, ingest, stack, port=settings.syslog_port
            )
        if settings.gelf_port is not None:
            listeners.gelf_port = await open_gelf(settings, ingest, stack, port=settings.gelf_port)
        yield listeners


def group_size(settings: Settings) -> int:
    """Records per `ship` call: within what the backlog (a shard's share of it) can take."""
    shards = 1 if settings.embedded else settings.stream_shards
    return settings.max_backlog // shards


async def open_syslog(
    settings: Settings, ingest: Ingest, stack: AsyncExitStack, *, port: int
) -> int:
    """TCP first: a port given as 0 is chosen there, and UDP binds the same number."""
    allowlist = Allowlist(settings.listener_allow)
    tcp = SyslogTcp(
        Outlet(ingest, protocol="syslog", listener="syslog_tcp", group=group_size(settings)),
        allowlist,
        max_line_bytes=settings.max_line_bytes,
    )
    server = await asyncio.start_server(tcp.serve, settings.host, port, reuse_port=True)
    stack.push_async_callback(close_server, server, tcp.close)
    port = int(server.sockets[0].getsockname()[1])
    udp = DatagramListener(
        syslog_datagrams(),
        Outlet(ingest, protocol="syslog", listener="syslog_udp", group=group_size(settings)),
        allowlist,
    )
    await open_datagrams(udp, settings.host, port, stack)
    log.info("syslog listening on %s:%d (UDP and TCP)", settings.host, port)
    return port


async def open_gelf(settings: Settings, ingest: Ingest, stack: AsyncExitStack, *, port: int) -> int:
    outlet = Outlet(ingest, protocol="gelf", listener="gelf_udp", group=group_size(settings))
    datagrams = GelfDatagrams(outlet, limit=settings.max_body_bytes, reassembly=Reassembly())
    udp = DatagramListener(datagrams, outlet, Allowlist(settings.listener_allow))
    port = await open_datagrams(udp, settings.host, port, stack)
    sweeper = asyncio.create_task(datagrams.sweep(), name="fleetlog-gelf-sweep")
    stack.push_async_callback(cancelled, sweeper)
    log.info("GELF listening on %s:%d (UDP)", settings.host, port)
    return port


async def open_datagrams(
    listener: DatagramListener, host: str, port: int, stack: AsyncExitStack
) -> int:
    """Bind the datagram socket and start its shipping task; on exit (in the reverse order)
    stop receiving, stop the task, and ship what still waits."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: listener, local_addr=(host, port), reuse_port=True
    )
    stack.push_async_callback(listener.flush)
    shipper = asyncio.create_task(listener.run(), name=f"fleetlog-{listener.outlet.listener}")
    stack.push_async_callback(cancelled, shipper)
    stack.callback(transport.close)
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    return int(sock.getsockname()[1])


async def close_server(
    server: asyncio.Server, close_connections: Callable[[], Awaitable[None]]
) -> None:
    server.close()
    await close_connections()
    await server.wait_closed()


async def cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
