"""A throwaway redis-server with AOF persistence, for tests and `fleetlog bench`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import redis

from fleetlog.localstack.process import (
    HOST,
    TEMP_PREFIX,
    LocalServer,
    free_port,
    wait_until,
)

REDIS_DEFAULT_CONFIG: Mapping[str, str] = {
    "save": "",
    "appendonly": "yes",
    "appendfsync": "always",
    "maxmemory-policy": "noeviction",
    "daemonize": "no",
}


class RedisServer(LocalServer):
    """A redis-server child process with AOF persistence in its own temp dir."""

    def __init__(
        self,
        extra_args: Sequence[str] = (),
        *,
        timeout: float = 15.0,
        temp_prefix: str = TEMP_PREFIX,
    ) -> None:
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.port = free_port()
        self.temp_dir = Path(tempfile.mkdtemp(prefix=temp_prefix))
        self.log_path = self.temp_dir / "redis.log"
        self.output_path = self.temp_dir / "redis.out"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def is_ready(self) -> bool:
        """True if the process is alive and answers PING."""
        return self.is_running and self._answers_ping()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def command(self) -> list[str]:
        """Return the redis-server argv; ``extra_args`` come last so they override defaults."""
        config = {
            "port": str(self.port),
            "bind": HOST,
            "dir": str(self.temp_dir),
            "logfile": str(self.log_path),
            **REDIS_DEFAULT_CONFIG,
        }
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        options = [arg for key, value in config.items() for arg in (f"--{key}", value)]
        return [executable, *options, *self.extra_args]

    def start(self) -> None:
        """Start the server (no-op if running) and wait until it answers PING."""
        if self.is_running:
            return
        self._reap()
        with self.output_path.open("ab") as output:
            self._proc = subprocess.Popen(
                self.command(),
                cwd=self.temp_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            self._answers_ping,
            what=f"redis-server PONG on port {self.port}",
            timeout=self.timeout,
            logs=(self.log_path, self.output_path),
            alive=lambda: self.is_running,
        )

    def stop(self) -> None:
        """Shut down gracefully (SIGTERM, which flushes the AOF) and reap the process."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server (simulated crash) and reap the process."""
        if self._proc is not None:
            self._proc.kill()
        self._reap()

    def restart(self) -> None:
        """Stop if running, then start on the same port and dir (reloading the AOF)."""
        self.stop()
        self.start()

    def flushall(self) -> None:
        with redis.Redis(host=HOST, port=self.port, socket_timeout=self.timeout) as client:
            client.flushall()

    def close(self) -> None:
        """Stop the server and remove its temp dir."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
            self._proc = None

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
