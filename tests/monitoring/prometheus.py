"""A real Prometheus from Debian's package for the monitoring tests, and ways to ask it."""

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from fleetlog.localstack import free_port

DEPLOY = Path(__file__).parents[2] / "deploy"
STARTUP_TIMEOUT_S = 30.0


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """`promtool <args>`, installed beside prometheus (scripts/ensure-services)."""
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: run scripts/ensure-services"
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


def settled(problems: Callable[[], list[str]], *, within: float) -> list[str]:
    """Ask `problems` until it finds none or `within` seconds passed; its last answer."""
    deadline = time.monotonic() + within
    found = problems()
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = problems()
    return found


class Prometheus:
    """A running Prometheus, asked over its HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def data(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=10.0).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The series of an instant query now."""
        result: list[dict[str, Any]] = self.data("/api/v1/query", query=expr)["result"]
        return result

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False


@contextmanager
def running_prometheus(config: dict[str, Any], *, workdir: Path) -> Iterator[Prometheus]:
    """Prometheus with `config` (JSON is YAML to it); stopped and waited for on exit."""
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is missing: run scripts/ensure-services"
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config))
    port = free_port()
    args = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (workdir / "prometheus.log").open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not prometheus.is_ready():
            assert process.poll() is None, (workdir / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.1)
        yield prometheus
    finally:
        process.terminate()
        process.wait(timeout=30)
