"""Local stacks the bench starts and stops itself, on free ports in a temp dir.

`embedded`: `fleetlog serve --workers N` on SQLite. `bare`: the ceiling app of `bare.py` on the
same server stack. `redis-postgres`: private redis-server and PostgreSQL (`fleetlog.localstack`),
`fleetlog migrate`, `fleetlog serve --workers N` and M `fleetlog worker`s, which may be held
back until the load ends (`HeldWorker`), so that Redis holds every accepted log. `cluster`: the
same on a private Redis Cluster (`LocalCluster`, with FLEETLOG_REDIS_CLUSTER=1), so that a run
can show how throughput per core holds as shards and processes are added.

A target names its process trees by component (`api`: the serve process and its workers,
`worker`, `redis`: every node of a cluster, `postgres`), so the bench can say where the
server's CPU went.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import redis

from fleetlog.bench.verify import PostgresLogs, SqliteLogs, StoredLogs
from fleetlog.config import Settings
from fleetlog.localstack import (
    HOST,
    LocalCluster,
    PostgresServer,
    RedisServer,
    ServerError,
    free_port,
    port_is_open,
    wait_until,
)
from fleetlog.localstack.redis_cluster import MASTERS

StackKind = Literal["embedded", "redis-postgres", "cluster", "bare"]

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
DATABASE = "fleetlog"
# The test suite's clusters skip fsync for speed; a benchmark measures a store that keeps
# what it committed through a crash, as the worker's acknowledgements assume.
DURABLE_POSTGRES = {"fsync": "on", "full_page_writes": "on"}
TEMP_PREFIX = "fleetlog-bench-"
DEFAULT_SHARDS = Settings.model_fields["stream_shards"].default


@dataclass(frozen=True, kw_only=True)
class HeldWorker:
    """The worker of a stack that starts only when told: until then Redis keeps every log."""

    start: Callable[[], None]
    redis_used_memory: Callable[[], int]


@dataclass(frozen=True, kw_only=True)
class Target:
    """A server to load: where it listens, its process trees by component, where it stores logs."""

    url: str
    description: str
    components: Callable[[], dict[str, list[int]]]
    open_store: Callable[[], Coroutine[Any, Any, StoredLogs]] | None
    held_worker: HeldWorker | None = None


@dataclass(frozen=True, kw_only=True)
class RedisNodes:
    """The Redis a pipeline stack's processes use: one server, or the nodes of a cluster."""

    url: str
    pids: Callable[[], list[int]]
    description: str
    cluster: bool

    def settings(self) -> dict[str, str]:
        """The fleetlog settings that point a process at it."""
        return {"redis_url": self.url} | ({"redis_cluster": "1"} if self.cluster else {})


class ServiceProcess:
    """A server process in its own session (so its workers stop with it), output to a file."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path):
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pids(self) -> list[int]:
        return [self.process.pid] if self.alive and self.process is not None else []

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_listening(self, port: int) -> None:
        """Wait for the port it opens once started (a worker's /metrics)."""
        wait_until(
            lambda: port_is_open(port),
            what=f"{self.argv[-1]} to listen on port {port}",
            timeout=STARTUP_TIMEOUT_S,
            logs=(self.log_path,),
            alive=lambda: self.alive,
        )

    def wait_healthy(self, url: str) -> None:
        wait_until(
            lambda: answers_health(url),
            what=f"{url}/health to answer 200",
            timeout=STARTUP_TIMEOUT_S,
            logs=(self.log_path,),
            alive=lambda: self.alive,
        )

    def run_to_end(self) -> None:
        """Run a one-shot command (`fleetlog migrate`); raise with its output if it fails."""
        self.start()
        assert self.process is not None
        if self.process.wait(timeout=STARTUP_TIMEOUT_S) != 0:
            output = self.log_path.read_text(errors="replace")
            raise ServerError(f"{' '.join(self.argv[1:])} failed:\n{output}")

    def stop(self) -> None:
        """SIGTERM the whole session, SIGKILL it if it outlives the timeout."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True, kw_only=True)
class WorkerProcess:
    """A `fleetlog worker` and the /metrics port it opens once it is up."""

    process: ServiceProcess
    metrics_port: int


def answers_health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1.0) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def service_env(**settings: str) -> dict[str, str]:
    """This environment without the caller's fleetlog settings, plus `settings` as FLEETLOG_*."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FLEETLOG_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update({f"FLEETLOG_{key.upper()}": value for key, value in settings.items()})
    return env


def redis_used_memory(url: str) -> int:
    """Redis's `used_memory`: the bytes its data and its clients take, as `maxmemory` counts."""
    with redis.Redis.from_url(url) as client:
        return int(client.info("memory")["used_memory"])


def pid_list(pid: int | None) -> list[int]:
    return [] if pid is None else [pid]


def fleetlog_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleetlog", *args]


class StackBuilder:
    """Starts the processes of one stack in a temp dir; stops them all, newest first."""

    def __init__(
        self,
        stack: ExitStack,
        *,
        workers: int,
        worker_processes: int,
        settings: Mapping[str, str],
    ) -> None:
        self.stack = stack
        self.workers = workers
        self.worker_processes = worker_processes
        self.settings = settings
        self.temp_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        stack.callback(shutil.rmtree, self.temp_dir, ignore_errors=True)

    def process(self, name: str, argv: list[str], env: dict[str, str]) -> ServiceProcess:
        process = ServiceProcess(
            argv, env=env, cwd=self.temp_dir, log_path=self.temp_dir / f"{name}.log"
        )
        self.stack.callback(process.stop)
        return process

    def server(self, name: str, argv: list[str], env: dict[str, str], url: str) -> ServiceProcess:
        process = self.process(name, argv, env)
        process.start()
        process.wait_healthy(url)
        return process

    def embedded(self) -> Target:
        port = free_port()
        url = f"http://{HOST}:{port}"
        data_dir = self.temp_dir / "data"
        argv = fleetlog_argv("serve", "--port", str(port), "--workers", str(self.workers))
        env = service_env(data_dir=str(data_dir), log_level="WARNING", **self.settings)
        serve = self.server("serve", argv, env, url)
        sqlite_path = Settings(_env_file=None, data_dir=data_dir).sqlite_path

        async def open_store() -> StoredLogs:
            return SqliteLogs(sqlite_path)

        return Target(
            url=url,
            description=f"embedded (SQLite), {self.workers} server process(es)",
            components=lambda: {"api": serve.pids},
            open_store=open_store,
        )

    def bare(self) -> Target:
        port = free_port()
        url = f"http://{HOST}:{port}"
        argv = [sys.executable, "-m", "uvicorn", "fleetlog.bench.bare:create_app", "--factory"]
        argv += ["--host", HOST, "--port", str(port), "--workers", str(self.workers)]
        argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        bare = self.server("bare", [*argv, "--log-level", "warning"], service_env(), url)
        return Target(
            url=url,
            description=f"bare ceiling (FastAPI on uvicorn), {self.workers} server process(es)",
            components=lambda: {"api": bare.pids},
            open_store=None,
        )

    def redis_postgres(self, *, hold_worker: bool) -> Target:
        redis_server = self.stack.enter_context(RedisServer(temp_prefix=TEMP_PREFIX))
        return self.pipeline(
            RedisNodes(
                url=redis_server.url,
                pids=lambda: pid_list(redis_server.pid),
                description="private redis-server",
                cluster=False,
            ),
            name="redis-postgres",
            hold_worker=hold_worker,
        )

    def cluster(self) -> Target:
        cluster = self.stack.enter_context(LocalCluster(temp_prefix=TEMP_PREFIX))
        acks = self.settings.get("redis_min_replica_acks", "0")
        nodes = RedisNodes(
            url=cluster.url,
            pids=lambda: cluster.pids,
            description=(
                f"private Redis Cluster ({MASTERS} masters, {MASTERS} replicas,"
                f" {acks} replica ack(s) before a 2xx)"
            ),
            cluster=True,
        )
        return self.pipeline(nodes, name="cluster", hold_worker=False)

    def pipeline(self, redis_nodes: RedisNodes, *, name: str, hold_worker: bool) -> Target:
        """PostgreSQL, `fleetlog migrate`, `fleetlog serve` and the workers, on this Redis."""
        postgres = self.stack.enter_context(
            PostgresServer(DURABLE_POSTGRES, temp_prefix=TEMP_PREFIX)
        )
        postgres.create_database(DATABASE)
        database_url = postgres.dsn(DATABASE)
        port = free_port()
        url = f"http://{HOST}:{port}"
        env = service_env(
            **redis_nodes.settings(),
            database_url=database_url,
            data_dir=str(self.temp_dir / "data"),
            log_level="WARNING",
            **self.settings,
        )
        self.process("migrate", fleetlog_argv("migrate"), env).run_to_end()
        argv = fleetlog_argv("serve", "--port", str(port), "--workers", str(self.workers))
        serve = self.server("serve", argv, env, url)
        workers = [self.worker(index, env) for index in range(self.worker_processes)]

        def start_workers() -> None:
            # Their /metrics opens once started and migrated: the bench's CPU clock starts then,
            # so the figures count the work on logs, not the imports.
            for worker in workers:
                worker.process.start()
            for worker in workers:
                worker.process.wait_listening(worker.metrics_port)

        held = None
        if hold_worker:
            held = HeldWorker(
                start=start_workers,
                redis_used_memory=lambda: redis_used_memory(redis_nodes.url),
            )
        else:
            start_workers()

        def components() -> dict[str, list[int]]:
            return {
                "api": serve.pids,
                "worker": [pid for worker in workers for pid in worker.process.pids],
                "redis": redis_nodes.pids(),
                "postgres": pid_list(postgres.pid),
            }

        shards = self.settings.get("stream_shards", str(DEFAULT_SHARDS))
        return Target(
            url=url,
            description=(
                f"{name}, {self.workers} server process(es), {self.worker_processes} worker(s)"
                f"{' held until the load ends' if hold_worker else ''}, {shards} shard(s),"
                f" {redis_nodes.description} and PostgreSQL"
            ),
            components=components,
            open_store=lambda: PostgresLogs.connect(database_url),
            held_worker=held,
        )

    def worker(self, index: int, env: dict[str, str]) -> WorkerProcess:
        """A `fleetlog worker`, not yet started, with a /metrics port of its own."""
        metrics_port = free_port()
        worker_env = {**env, "FLEETLOG_WORKER_METRICS_PORT": str(metrics_port)}
        process = self.process(f"worker-{index}", fleetlog_argv("worker"), worker_env)
        return WorkerProcess(process=process, metrics_port=metrics_port)


@contextmanager
def spawn_stack(
    kind: StackKind,
    *,
    workers: int,
    worker_processes: int = 1,
    settings: Mapping[str, str] | None = None,
    hold_worker: bool = False,
) -> Iterator[Target]:
    """Start a whole local stack of `kind`; everything is stopped and removed on exit.
    `worker_processes` are the `fleetlog worker`s of redis-postgres and cluster; `settings` are
    more fleetlog settings for its processes (`max_event_age="691200"`); `hold_worker`
    (redis-postgres only) leaves its workers to `Target.held_worker.start`."""
    if hold_worker and kind != "redis-postgres":
        raise ValueError(f"only redis-postgres has a worker to hold, not {kind}")
    with ExitStack() as stack:
        builder = StackBuilder(
            stack, workers=workers, worker_processes=worker_processes, settings=settings or {}
        )
        if kind == "embedded":
            yield builder.embedded()
        elif kind == "bare":
            yield builder.bare()
        elif kind == "cluster":
            yield builder.cluster()
        else:
            yield builder.redis_postgres(hold_worker=hold_worker)
