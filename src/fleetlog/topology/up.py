"""`fleetlog up`: nginx in front of N API processes, plus M workers, on one machine.

Each API process listens on 127.0.0.1, on the ports after nginx's (port+1 … port+N); each
worker's metrics on FLEETLOG_WORKER_METRICS_PORT + i. A process that dies is restarted, as
systemd's `Restart=always` would; nginx routes around an API process while it is down. On
SIGTERM or Ctrl-C nginx stops first (finishing its requests), then the API processes drain,
then the workers finish their batches.
"""

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

from fleetlog.config import Settings
from fleetlog.localstack.process import bindable, log_tail
from fleetlog.topology.nginx import NGINX, render_main, render_site
from fleetlog.topology.processes import Child

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
SUPERVISE_INTERVAL_S = 0.2
# Bounds of a clean stop: nginx's requests, the API's graceful shutdown (10 s) and a batch.
NGINX_STOP_S = 15.0
API_STOP_S = 20.0
WORKER_STOP_S = 60.0


class StartupFailed(RuntimeError):
    """The topology did not become ready; the message says which part."""


def fleetlog_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleetlog", *args]


class Topology:
    """The processes of one `fleetlog up`, with their files in `workdir`."""

    def __init__(self, settings: Settings, *, api: int, workers: int, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.api_ports = [settings.port + 1 + i for i in range(api)]
        self.apis = [
            Child(
                f"api-{i + 1}",
                fleetlog_argv("serve", "--host", HOST, "--port", str(port), "--workers", "1"),
                env=self.child_env(f"api-{i + 1}"),
            )
            for i, port in enumerate(self.api_ports)
        ]
        self.workers = [
            Child(
                f"worker-{i + 1}",
                fleetlog_argv("worker", "--metrics-port", str(self.worker_metrics_port(i))),
                env=self.child_env(f"worker-{i + 1}"),
            )
            for i in range(workers)
        ]
        self.nginx = Child(
            "nginx",
            [str(NGINX), "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
            env=dict(os.environ),
            stop_signal=signal.SIGQUIT,
        )

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def children(self) -> list[Child]:
        return [*self.workers, *self.apis, self.nginx]

    def worker_metrics_port(self, index: int) -> int:
        base = self.settings.worker_metrics_port
        return base + index if base else 0

    def child_env(self, name: str) -> dict[str, str]:
        """The environment of a fleetlog child: nginx's X-Forwarded-For is trusted."""
        proxies = dict.fromkeys([HOST, *self.settings.trusted_proxies])
        return {
            **os.environ,
            "FLEETLOG_TRUSTED_PROXIES": ",".join(proxies),
            "FLEETLOG_INSTANCE": f"{self.settings.instance}-{name}",
        }

    def ports_in_use(self) -> list[str]:
        """The ports of nginx, the API processes and the workers' metrics that something else
        listens on, each with whose it is."""
        wanted = [("nginx", self.settings.host, self.settings.port)]
        wanted += [
            (api.name, HOST, port) for api, port in zip(self.apis, self.api_ports, strict=True)
        ]
        wanted += [
            (f"{worker.name} metrics", self.settings.host, port)
            for i, worker in enumerate(self.workers)
            if (port := self.worker_metrics_port(i))
        ]
        return [
            f"{host}:{port} ({name})" for name, host, port in wanted if not bindable(port, host)
        ]

    def write_nginx_conf(self) -> None:
        site = self.workdir / "fleetlog.conf"
        site.write_text(
            render_site(
                [f"{HOST}:{port}" for port in self.api_ports],
                listen=f"{self.settings.host}:{self.settings.port}",
                max_body_bytes=self.settings.max_body_bytes,
                purpose=f"`fleetlog up` with {len(self.apis)} API process(es)",
            )
        )
        (self.workdir / "nginx.conf").write_text(render_main(self.workdir, site=site))
        # nginx's workers may run as nobody; they must reach their temp paths in here.
        self.workdir.chmod(0o755)

    def migrate(self) -> None:
        """Once, before any process starts, so that they do not race to create the schema."""
        migrator = Child("migrate", fleetlog_argv("migrate"), env=self.child_env("migrate"))
        migrator.start()
        if (code := migrator.wait(timeout=READY_TIMEOUT_S)) != 0:
            raise StartupFailed(f"fleetlog migrate exited with {code}")

    def wait_ready(self, stop: threading.Event) -> None:
        """Every API process ready on its own port, then fleetlog ready through nginx."""
        urls = [f"http://{HOST}:{port}/ready" for port in self.api_ports]
        deadline = time.monotonic() + READY_TIMEOUT_S
        for url in [*urls, f"{self.url}/ready"]:
            while not answers_ready(url):
                if stop.is_set():
                    raise StartupFailed("stopped before it was ready")
                if died := [child for child in self.children if child.exit_code is not None]:
                    raise StartupFailed(f"{died[0].name} exited with {died[0].exit_code}")
                if time.monotonic() > deadline:
                    raise StartupFailed(f"{url} was not ready within {READY_TIMEOUT_S:.0f} s")
                time.sleep(0.1)

    def supervise(self, stop: threading.Event) -> None:
        while not stop.wait(SUPERVISE_INTERVAL_S):
            for child in self.children:
                child.restart_if_dead()

    def stop(self) -> int:
        """Stop in order, each group within its bound; 0 when every process ended cleanly."""
        clean = [
            *stop_group([self.nginx], NGINX_STOP_S),
            *stop_group(self.apis, API_STOP_S),
            *stop_group(self.workers, WORKER_STOP_S),
        ]
        return 0 if all(clean) else 1


def stop_group(children: list[Child], bound: float) -> list[bool]:
    """Signal them all, then wait for each: whether each ended cleanly."""
    started = [child for child in children if child.proc is not None]
    for child in started:
        child.signal()
    return [child.wait_stopped(timeout=bound) for child in started]


def answers_ready(url: str) -> bool:
    try:
        with urlopen(url, timeout=1.0) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_up(settings: Settings, *, api: int, workers: int, on_ready: Callable[[str], None]) -> int:
    """Run the topology until SIGTERM or Ctrl-C; its exit code."""
    stop = stop_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="fleetlog-up-"))
    topology = Topology(settings, api=api, workers=workers, workdir=workdir)
    if taken := topology.ports_in_use():
        shutil.rmtree(workdir, ignore_errors=True)
        log.error(
            "fleetlog up: in use already: %s. Choose other ports: --port for nginx (the API "
            "processes take the ones after it), FLEETLOG_WORKER_METRICS_PORT for the workers' "
            "metrics (0: none)",
            ", ".join(taken),
        )
        return 1
    try:
        topology.write_nginx_conf()
        topology.migrate()
        for child in topology.children:
            child.start()
        topology.wait_ready(stop)
    except StartupFailed as failure:
        log.error("fleetlog up failed: %s\n%s", failure, log_tail(workdir / "error.log"))
        topology.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    try:
        on_ready(topology.url)
        topology.supervise(stop)
        return topology.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
