"""A throwaway Redis Cluster on loopback: 3 masters and 3 replicas, for tests and `fleetlog bench`.

Each node is a `RedisServer` (AOF, its own temp dir and free ports) started with
`--cluster-enabled yes`; `redis-cli --cluster create` joins them. A short node timeout makes a
killed master fail over within a few seconds; `heal()` restarts a killed node, which rejoins as
a replica of the node that took its slots.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import redis

from fleetlog.localstack.process import (
    HOST,
    TEMP_PREFIX,
    LocalServer,
    ServerError,
    free_port,
    wait_until,
)
from fleetlog.localstack.redis_server import RedisServer


def cluster_node() -> list[str]:
    """redis-server arguments of a Redis Cluster node. Its bus port is chosen too: by default
    it is the port + 10,000, past 65,535 for a free port above 55,535."""
    return ["--cluster-enabled", "yes", "--cluster-port", str(free_port())]


NODE_TIMEOUT_MS = 1000
# A replica's first sync starts at once, not after Redis's default wait for more replicas, and
# a node stopped at teardown does not first wait for its replicas to catch up.
QUICK_REPLICATION = ("--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0")
MASTERS = 3
READY_TIMEOUT_S = 30.0


class LocalCluster(LocalServer):
    """Six `RedisServer` nodes joined into one cluster with a replica per master."""

    def __init__(self, *, temp_prefix: str = TEMP_PREFIX) -> None:
        self.nodes = [
            RedisServer(
                [
                    *cluster_node(),
                    "--cluster-node-timeout",
                    str(NODE_TIMEOUT_MS),
                    *QUICK_REPLICATION,
                ],
                temp_prefix=temp_prefix,
            )
            for _ in range(2 * MASTERS)
        ]

    @property
    def url(self) -> str:
        """The URL of one live master: what FLEETLOG_REDIS_URL names."""
        return self.masters()[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        executable = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [executable, "--cluster", "create", *addresses, "--cluster-replicas", "1"]
            + ["--cluster-yes"],
            check=False,
            capture_output=True,
            text=True,
            timeout=READY_TIMEOUT_S,
        )
        if created.returncode != 0:
            output = created.stdout + created.stderr
            raise ServerError(f"redis-cli --cluster create failed:\n{output}")
        self.wait_ready()

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    @property
    def pids(self) -> list[int]:
        """The process ids of its live nodes, masters and replicas."""
        return [pid for node in self.nodes if (pid := node.pid) is not None]

    def info(self, node: RedisServer, section: str) -> dict[str, Any]:
        with redis.Redis(host=HOST, port=node.port, socket_timeout=2.0) as client:
            return dict(client.info(section))

    def state_is_ok(self, node: RedisServer) -> bool:
        with redis.Redis(host=HOST, port=node.port, socket_timeout=2.0) as client:
            return b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")

    def is_ready(self) -> bool:
        """Every node runs, sees every slot served, and the masters each have their replica."""
        try:
            if not all(node.is_running for node in self.nodes):
                return False
            if not all(self.state_is_ok(node) for node in self.nodes):
                return False
            masters = self.masters()
            return len(masters) == MASTERS and all(self.replica_online(node) for node in masters)
        except (redis.RedisError, KeyError, TypeError):
            return False

    def replica_online(self, master: RedisServer) -> bool:
        replication = self.info(master, "replication")
        return bool(
            replication["connected_slaves"] == 1 and replication["slave0"]["state"] == "online"
        )

    def wait_ready(self) -> None:
        wait_until(self.is_ready, what="the Redis Cluster's state ok", timeout=READY_TIMEOUT_S)

    def masters(self) -> list[RedisServer]:
        return [
            node
            for node in self.nodes
            if node.is_running and self.info(node, "replication")["role"] == "master"
        ]

    def master_of(self, key: str) -> RedisServer:
        """The live master that serves `key`'s slot."""
        node = self.masters()[0]
        with redis.Redis(host=HOST, port=node.port, socket_timeout=2.0) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            ranges = client.execute_command("CLUSTER", "SLOTS")
        port = next(int(master[1]) for start, end, master, *_ in ranges if start <= slot <= end)
        return next(node for node in self.nodes if node.port == port)

    def node_id(self, node: RedisServer) -> str:
        with redis.Redis(host=HOST, port=node.port, socket_timeout=2.0) as client:
            return str(client.execute_command("CLUSTER", "MYID").decode())

    def migrate_slot(self, key: str, to: RedisServer) -> None:
        """Move `key`'s slot to master `to`, key by key, as `redis-cli --cluster reshard` moves
        each of its slots: IMPORTING and MIGRATING, MIGRATE in batches, then SETSLOT NODE."""
        source = self.master_of(key)
        with (
            redis.Redis(host=HOST, port=source.port, socket_timeout=5.0) as src,
            redis.Redis(host=HOST, port=to.port, socket_timeout=5.0) as dst,
        ):
            slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(to))
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", HOST, to.port, "", 0, 5000, "KEYS", *keys)
            # The new owner first, then the old one, then the rest: as redis-cli does.
            for node in sorted(self.masters(), key=lambda n: (n is not to, n is not source)):
                with redis.Redis(host=HOST, port=node.port, socket_timeout=5.0) as client:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", self.node_id(to))

    def flushall(self) -> None:
        for node in self.masters():
            node.flushall()

    def heal(self) -> None:
        """Restart any node a test killed (it rejoins from its nodes.conf) and wait for ok."""
        for node in self.nodes:
            if not node.is_running:
                node.start()
        self.wait_ready()
