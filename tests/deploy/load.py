"""Ingest load through `fleetlog up`'s nginx, recording exactly which logs were acknowledged."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.fixtures.pipeline import wait_for
from tests.fixtures.records import make_log

PER_REQUEST = 5


class Load:
    """`senders` clients, each with one request in flight, each log with a unique message."""

    def __init__(self, url: str, *, tag: str, senders: int = 8) -> None:
        self.url = url
        self.tag = tag
        self.senders = senders
        self.acknowledged: list[str] = []
        self.failed: list[list[str]] = []
        self.stopping = asyncio.Event()

    async def send(self, sender: int) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            request = 0
            while not self.stopping.is_set():
                messages = [f"{self.tag}-{sender}-{request}-{i}" for i in range(PER_REQUEST)]
                batch = {"logs": [make_log(message=message) for message in messages]}
                try:
                    answer = await client.post("/api/logs/batch", json=batch)
                    ok = answer.is_success
                except httpx.TransportError:
                    ok = False
                if ok:
                    self.acknowledged.extend(messages)
                else:
                    self.failed.append(messages)
                request += 1

    async def until_acknowledged(self, more: int) -> None:
        """Until `more` logs past those acknowledged now are acknowledged."""
        target = len(self.acknowledged) + more

        async def reached() -> bool:
            return len(self.acknowledged) >= target

        await wait_for(reached, what=f"{target} logs acknowledged")


@asynccontextmanager
async def running_load(url: str, *, tag: str) -> AsyncIterator[Load]:
    load = Load(url, tag=tag)
    tasks = [asyncio.create_task(load.send(sender)) for sender in range(load.senders)]
    try:
        yield load
    finally:
        load.stopping.set()
        await asyncio.gather(*tasks)
