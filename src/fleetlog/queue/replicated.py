"""Writes that return once replicas have them too: each followed by WAIT on its connection.

Redis replicates asynchronously: a master that dies before a replica has an entry takes it along,
2xx or not. With FLEETLOG_REDIS_MIN_REPLICA_ACKS=N, each call of the enqueue script is followed
by `WAIT N timeout`, and its requests are answered 503 (the entries are in the stream, and may
well be stored) unless N replicas acknowledged them in time (docs/durability.md). A keyed
retry answered from the mark such a call left waits the same way, through a write to the mark
(`RedisStreamQueue.ensure_durable`).

WAIT counts replicas that acknowledged the writes *of the connection it is sent on*, so it goes
in one pipeline with the write, on one connection to the master of the write's slot. A
RedisCluster client can neither pipeline a script nor aim a keyless WAIT at a slot's master:
on a cluster the pair goes through a plain client of that master, found from the cluster
client's slot map, which is refreshed whenever the pair fails (a failover, a moved slot).
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, SlotNotCoveredError

from fleetlog.errors import StoreUnavailable
from fleetlog.redis_client import REDIS_ERRORS, Client, connect_node


class ReplicatedWrites:
    """Writes to one slot each, answered once `replicas` replicas have them, up to `timeout`."""

    def __init__(
        self,
        client: Client,
        script: AsyncScript,
        *,
        replicas: int,
        timeout: timedelta,
        retry_after: float,
    ) -> None:
        self.client = client
        self.script = script
        self.replicas = replicas
        self.timeout_ms = max(1, int(timeout.total_seconds() * 1000))
        self.retry_after = retry_after
        self._masters: dict[str, Redis] = {}

    async def enqueue(self, *, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The enqueue script's reply."""
        return await self._write(keys[0], ("EVALSHA", self.script.sha, len(keys), *keys, *args))

    async def expire(self, key: str, ttl_ms: int) -> bool:
        """PEXPIRE `key`; whether it exists. A master replicates its writes in order, so once
        replicas acknowledged this one they have every earlier write of `key`'s slot too."""
        return bool(await self._write(key, ("PEXPIRE", key, ttl_ms)))

    async def _write(self, key: str, command: Sequence[Any]) -> Any:
        """`command`'s reply, once the replicas acknowledged it: StoreUnavailable if too few."""
        master = self._master_of(key)
        try:
            try:
                reply, acknowledged = await self._call(master, command)
            except NoScriptError:
                await master.script_load(self.script.script)
                reply, acknowledged = await self._call(master, command)
        except REDIS_ERRORS:
            await self._refresh()
            raise
        if int(acknowledged) < self.replicas:
            raise StoreUnavailable(
                f"{acknowledged} of the {self.replicas} Redis replicas required acknowledged "
                f"the logs within {self.timeout_ms} ms",
                retry_after=self.retry_after,
            )
        return reply

    async def _call(self, master: Redis, command: Sequence[Any]) -> list[Any]:
        """The command then WAIT, in one round trip on one connection."""
        async with master.pipeline(transaction=False) as pipe:
            pipe.execute_command(*command)
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
            return list(await pipe.execute())

    def _master_of(self, key: str) -> Redis:
        if not isinstance(self.client, RedisCluster):
            return self.client
        node = self.client.get_node_from_key(key)
        if node is None:
            raise SlotNotCoveredError(f"no master serves the slot of {key}")
        if node.name not in self._masters:
            self._masters[node.name] = connect_node(node.host, int(node.port))
        return self._masters[node.name]

    async def _refresh(self) -> None:
        """Learn the cluster's masters anew; a cluster still failing over is asked next time."""
        if isinstance(self.client, RedisCluster):
            try:
                await self.client.nodes_manager.initialize()
            except REDIS_ERRORS:
                return

    async def close(self) -> None:
        for master in self._masters.values():
            await master.aclose()
