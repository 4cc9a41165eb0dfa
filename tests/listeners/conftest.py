"""An embedded fleetlog with its syslog and GELF listeners on free ports, and ways to use it."""

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fleetlog.config import Settings
from fleetlog.localstack import free_port
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import sample, wait_for

HOST = "127.0.0.1"


@dataclass
class Fleetlog:
    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings

    @property
    def syslog_port(self) -> int:
        return int(self.app.state.listeners.syslog_port)

    @property
    def gelf_port(self) -> int:
        return int(self.app.state.listeners.gelf_port)

    async def search(self, q: str = "") -> list[dict[str, Any]]:
        answer = await self.http.get("/api/logs", params={"q": q, "limit": 1000, "order": "asc"})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])


def listening(settings: Settings, **overrides: Any) -> Settings:
    ports = {"syslog_port": free_port(), "gelf_port": free_port()}
    return settings.model_copy(update=ports | overrides)


@pytest.fixture
async def fleetlog(settings: Settings) -> AsyncIterator[Fleetlog]:
    configured = listening(settings)
    async with running_app(configured) as app, client_of(app) as http:
        yield Fleetlog(app, http, configured)


class Counted:
    """The listener lines counter's moves since it was made, by listener and outcome."""

    def __init__(self) -> None:
        self.start = {key: self.now(*key) for key in self.keys()}

    @staticmethod
    def keys() -> list[tuple[str, str]]:
        return [
            (listener, outcome)
            for listener in ("syslog_tcp", "syslog_udp", "gelf_udp")
            for outcome in ("accepted", "invalid", "refused", "dropped", "unlisted_source")
        ]

    @staticmethod
    def now(listener: str, outcome: str) -> float:
        return sample("fleetlog_listener_lines_total", listener=listener, outcome=outcome)

    def __call__(self, listener: str, outcome: str) -> int:
        return int(self.now(listener, outcome) - self.start[(listener, outcome)])

    def moves(self) -> dict[str, int]:
        """Every counter that moved, as `listener.outcome`."""
        return {f"{k[0]}.{k[1]}": self(*k) for k in self.keys() if self(*k)}

    async def reach(self, listener: str, outcome: str, n: int) -> None:
        async def reached() -> bool:
            return self(listener, outcome) >= n

        await wait_for(reached, what=f"{n} lines {outcome} by {listener}")


async def run(*command: str, stdin: bytes | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate(stdin)
    assert process.returncode == 0, output.decode(errors="replace")


async def send_tcp(port: int, data: bytes) -> None:
    """Send `data` on one connection, half-close it, and wait until the listener closes it
    (once it has shipped every line, or at once, unread, if it does not take the source)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        assert await reader.read() == b""
    except ConnectionResetError:
        pass
    writer.close()


def send_udp(port: int, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, (HOST, port))
