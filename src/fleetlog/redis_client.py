"""The one way fleetlog opens a Redis client: bounded, blocking pool; timeouts on every call."""

from redis.asyncio import BlockingConnectionPool, Redis

SOCKET_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 32


def connect(url: str, *, socket_timeout: float = SOCKET_TIMEOUT_S) -> Redis:
    """A client whose requests wait for one of a few connections, rather than fail for want.

    Redis runs commands one at a time: past a few dozen connections more only cost, and under
    hundreds of concurrent requests an unbounded-then-failing pool answered 503s.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
    )
    return Redis.from_pool(pool)
