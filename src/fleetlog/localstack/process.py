"""What both local servers share: free ports, waiting on conditions, processes and logs."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

TEMP_PREFIX = "fleetlog-"
HOST = "127.0.0.1"
POLL_INTERVAL = 0.02
LOG_TAIL_LINES = 40


class ServerError(RuntimeError):
    """A local server failed to start, stop or answer."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# Where runs of consecutive ports are taken: below Linux's ephemeral range (32768 and up), so an
# outgoing connection never takes one of them between the check and a server's bind.
CONSECUTIVE_PORTS = range(20000, 32000)
CONSECUTIVE_TRIES = 100


def bindable(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on host:port now. With SO_REUSEADDR, as servers bind: a
    port whose connections are closing (TIME_WAIT) is free, one something listens on is not."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror:
        # Not an address this machine resolves: the server itself says so when it starts.
        return True
    with socket.socket(family, kind, protocol) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first of `count` consecutive TCP ports on 127.0.0.1 that are all free right now (a
    server that listens on the ports after its own, as `fleetlog up` does)."""
    for _ in range(CONSECUTIVE_TRIES):
        first = random.randrange(CONSECUTIVE_PORTS.start, CONSECUTIVE_PORTS.stop - count)
        if all(bindable(port) for port in range(first, first + count)):
            return first
    raise ServerError(f"no {count} consecutive free ports in {CONSECUTIVE_PORTS}")


def port_is_open(port: int) -> bool:
    """Return True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(*paths: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last lines of each existing log file, for error messages."""
    chunks = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        tail = "\n".join(text.splitlines()[-lines:])
        chunks.append(f"--- {path} (last {lines} lines) ---\n{tail}")
    return "\n".join(chunks) or "(no log output)"


def wait_until(
    condition: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    logs: Sequence[Path] = (),
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``condition`` until true; raise ServerError with log tails on timeout or death."""
    deadline = time.monotonic() + timeout
    while not condition():
        if alive is not None and not alive():
            raise ServerError(f"server process exited while waiting for {what}\n{log_tail(*logs)}")
        if time.monotonic() > deadline:
            raise ServerError(f"timed out after {timeout}s waiting for {what}\n{log_tail(*logs)}")
        time.sleep(POLL_INTERVAL)


def pid_is_alive(pid: int) -> bool:
    """Return True if ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def pids_with_cwd(directory: Path) -> list[int]:
    """Return live processes whose working directory is ``directory`` (postgres chdirs there)."""
    target = os.path.realpath(directory)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == target:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class LocalServer(ABC):
    """A server process started in `with`, and stopped with its temp dir removed after."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
