"""The one way fleetlog opens a Redis client: bounded, blocking pool; timeouts on every call.

A Redis Cluster gets redis-py's `RedisCluster`, which routes each command to the master of its
key's slot and follows the cluster through failovers and slot migrations (MOVED, ASK).
"""

from typing import Any, TypeAlias

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException

SOCKET_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 32
PROBE_TIMEOUT_S = 2.0

Client: TypeAlias = Redis | RedisCluster
# What a Redis call may raise when Redis cannot answer: a cluster whose slots are not all
# served (mid-failover) raises RedisClusterException, which is no RedisError.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)


def connect(url: str, *, cluster: bool = False, socket_timeout: float = SOCKET_TIMEOUT_S) -> Client:
    """A client whose requests wait for one of a few connections, rather than fail for want.

    Redis runs commands one at a time: past a few dozen connections more only cost, and under
    hundreds of concurrent requests an unbounded-then-failing pool answered 503s. A cluster
    (`cluster`, or a node of one at `url`) is reached through every master's own pool.
    """
    if cluster or is_cluster_node(url):
        return RedisCluster.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
    return Redis.from_pool(BlockingConnectionPool.from_url(url, **pool_options(socket_timeout)))


def connect_node(host: str, port: int, *, socket_timeout: float = SOCKET_TIMEOUT_S) -> Redis:
    """A plain client of one node of a cluster, for what must go through one connection."""
    options = pool_options(socket_timeout)
    return Redis.from_pool(BlockingConnectionPool(host=host, port=port, **options))


def pool_options(socket_timeout: float) -> dict[str, Any]:
    return {
        "max_connections": MAX_CONNECTIONS,
        "timeout": socket_timeout,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
    }


def is_cluster_node(url: str) -> bool:
    """Whether the Redis at `url` says `cluster_enabled:1`; False when it cannot be asked
    (the queue's start-up check asks again, and refuses a cluster node it was not told of)."""
    try:
        with redis.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
        ) as client:
            return bool(client.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return False


def routed(client: Client, key: str) -> dict[str, Any]:
    """`execute_command` options that send a command on `key` straight to its slot's master.

    redis-py's cluster client learns the keys of a command whose keys move (XREAD, XREADGROUP)
    by asking a node, COMMAND GETKEYS, twice: three round trips for every read of a stream. A
    slot whose master is not known (mid-failover) is left to the client's own routing.
    """
    if isinstance(client, RedisCluster) and (node := client.get_node_from_key(key)) is not None:
        return {"target_nodes": node}
    return {}
