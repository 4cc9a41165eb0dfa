"""What fleetlog checks of a Redis as it starts: that it keeps what it accepted, and that it is
reached as what it is (a standalone Redis, or a Redis Cluster through a cluster client)."""

import logging
from collections.abc import Mapping
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from fleetlog.errors import Misconfigured
from fleetlog.redis_client import Client

log = logging.getLogger(__name__)


async def check_config(client: Client) -> None:
    """Refuse a Redis that may evict accepted logs, or a cluster node reached without a cluster
    client; warn when it does not persist them. On a cluster, every master is checked."""
    if isinstance(client, RedisCluster):
        try:
            await client.initialize()
        except RedisClusterException as exc:
            raise Misconfigured(
                f"FLEETLOG_REDIS_URL names a Redis Cluster (cluster_enabled:1) that cannot serve "
                f"fleetlog: {exc}"
            ) from exc
        try:
            configs: Any = await client.config_get("*", target_nodes=RedisCluster.PRIMARIES)
        except ResponseError as exc:
            warn_unread(exc)
            return
        for node_config in configs.values():
            check_persistence(node_config)
        return
    try:
        cluster = await client.info("cluster")
    except ResponseError:
        cluster = {}  # a Redis that hides INFO cluster runs no cluster of its own
    if cluster.get("cluster_enabled"):
        # One node's client sends every shard's XADD to it and is told MOVED for the shards
        # other masters own: most acknowledged logs would never reach a worker.
        raise Misconfigured(
            "this Redis is a node of a Redis Cluster (cluster_enabled:1) but fleetlog opened it "
            "as a standalone Redis: set FLEETLOG_REDIS_CLUSTER=1"
        )
    try:
        config = await client.config_get("*")
    except ResponseError as exc:
        warn_unread(exc)
        return
    check_persistence(config)


def check_persistence(config: Mapping[Any, Any]) -> None:
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        raise Misconfigured(
            f"Redis maxmemory-policy is {policy}: it may evict logs nobody has stored yet; "
            "set it to noeviction"
        )
    if config.get("appendonly") != "yes":
        log.warning(
            "Redis runs without AOF (appendonly no): a Redis crash loses logs already "
            "acknowledged; see docs/durability.md"
        )
    elif config.get("appendfsync") != "always":
        log.info("Redis AOF fsyncs every second: a machine crash may lose the last second")


def warn_unread(exc: ResponseError) -> None:
    log.warning(
        "cannot read Redis CONFIG (%s): make sure maxmemory-policy is noeviction and "
        "appendonly is yes (docs/durability.md)",
        exc,
    )
