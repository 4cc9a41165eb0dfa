"""Local Redis and PostgreSQL servers: throwaway, on free ports, in their own temp dirs.

The whole fleetlog topology can run on one machine without Docker: the test suite starts these
servers per session, and `fleetlog bench --spawn redis-postgres` starts a private pair per run.

* `RedisServer` -- a redis-server child process with AOF persistence (`appendfsync always`,
  `noeviction`), the durability fleetlog's contract relies on.
* `LocalCluster` -- a Redis Cluster of six such servers (3 masters, 3 replicas) on loopback.
* `PostgresServer` -- a PostgreSQL cluster made by initdb and driven with pg_ctl; when running as
  root, initdb and pg_ctl run as the ``postgres`` user via ``runuser``.

Both listen on 127.0.0.1 only, never on the standard ports, keep their files in
``tempfile.mkdtemp(prefix=temp_prefix)`` and remove them on `close()`; both can be killed
(SIGKILL) and restarted on the same port and files, for crash tests.
"""

from fleetlog.localstack.postgres_server import PostgresServer
from fleetlog.localstack.process import (
    HOST,
    LocalServer,
    ServerError,
    free_port,
    port_is_open,
    wait_until,
)
from fleetlog.localstack.redis_cluster import LocalCluster, cluster_node
from fleetlog.localstack.redis_server import RedisServer

__all__ = [
    "HOST",
    "LocalCluster",
    "LocalServer",
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "cluster_node",
    "free_port",
    "port_is_open",
    "wait_until",
]
