"""Local Redis and PostgreSQL servers: throwaway, on free ports, in their own temp dirs.

The whole fleetlog topology can run on one machine without Docker: the test suite starts these
servers per session, and `fleetlog bench --spawn redis-postgres` starts a private pair per run.

* `RedisServer` -- a redis-server child process with AOF persistence (`appendfsync always`,
  `noeviction`), the durability fleetlog's contract relies on.
* `PostgresServer` -- a PostgreSQL cluster made by initdb and driven with pg_ctl; when running as
  root, initdb and pg_ctl run as the ``postgres`` user via ``runuser``.

Both listen on 127.0.0.1 only, never on the standard ports, keep their files in
``tempfile.mkdtemp(prefix=temp_prefix)`` and remove them on `close()`; both can be killed
(SIGKILL) and restarted on the same port and files, for crash tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

TEMP_PREFIX = "fleetlog-"
HOST = "127.0.0.1"
POLL_INTERVAL = 0.02
LOG_TAIL_LINES = 40
REDIS_DEFAULT_CONFIG: Mapping[str, str] = {
    "save": "",
    "appendonly": "yes",
    "appendfsync": "always",
    "maxmemory-policy": "noeviction",
    "daemonize": "no",
}
PG_USER = "postgres"
PG_DEFAULT_SETTINGS: Mapping[str, str] = {
    "listen_addresses": HOST,
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "on",
    "max_connections": "200",
}
INITDB_ARGS = ("-A", "trust", "-U", PG_USER, "--encoding=UTF8", "--no-locale", "--no-sync")
PSQL_ARGS = ("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class ServerError(RuntimeError):
    """A local server failed to start, stop or answer."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int) -> bool:
    """Return True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(*paths: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last lines of each existing log file, for error messages."""
    chunks = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        tail = "\n".join(text.splitlines()[-lines:])
        chunks.append(f"--- {path} (last {lines} lines) ---\n{tail}")
    return "\n".join(chunks) or "(no log output)"


def wait_until(
    condition: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    logs: Sequence[Path] = (),
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``condition`` until true; raise ServerError with log tails on timeout or death."""
    deadline = time.monotonic() + timeout
    while not condition():
        if alive is not None and not alive():
            raise ServerError(f"server process exited while waiting for {what}\n{log_tail(*logs)}")
        if time.monotonic() > deadline:
            raise ServerError(f"timed out after {timeout}s waiting for {what}\n{log_tail(*logs)}")
        time.sleep(POLL_INTERVAL)


def _pid_is_alive(pid: int) -> bool:
    """Return True if ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def _pids_with_cwd(directory: Path) -> list[int]:
    """Return live processes whose working directory is ``directory`` (postgres chdirs there)."""
    target = os.path.realpath(directory)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == target:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class LocalServer(ABC):
    """A server process started in `with`, and stopped with its temp dir removed after."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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


def postgres_bin_dir() -> Path:
    """Return the newest /usr/lib/postgresql/<version>/bin, or the dir of pg_ctl on PATH."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if candidates:
        newest = max(candidates, key=lambda path: float(Path(path).parts[-3]))
        return Path(newest).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise ServerError("PostgreSQL binaries not found (no /usr/lib/postgresql/*/bin, no pg_ctl)")
    return Path(pg_ctl).parent


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _pg_env() -> dict[str, str]:
    """Return the environment without PG* variables that could redirect the tools."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _give_to_postgres(path: Path) -> None:
    """chown ``path`` to the postgres user when running as root."""
    if _running_as_root():
        user = pwd.getpwnam(PG_USER)
        os.chown(path, user.pw_uid, user.pw_gid)


def _postgres_can_write(path: Path) -> bool:
    argv = ["runuser", "-u", PG_USER, "--", "test", "-w", str(path)]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode == 0


def _make_postgres_temp_dir(prefix: str) -> Path:
    """Make a temp dir for the cluster; as root, one the postgres user owns and can reach.

    mkdtemp() under a root-only TMPDIR would be unreachable for postgres, so fall back to /tmp.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if not _running_as_root():
        return path
    _give_to_postgres(path)
    if not _postgres_can_write(path):
        shutil.rmtree(path, ignore_errors=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        _give_to_postgres(path)
    return path


class PostgresServer(LocalServer):
    """A PostgreSQL cluster (initdb once) in its own temp dir, controlled with pg_ctl."""

    def __init__(
        self,
        settings: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
        temp_prefix: str = TEMP_PREFIX,
    ) -> None:
        self.settings = {**PG_DEFAULT_SETTINGS, **(settings or {})}
        self.timeout = timeout
        self.bin_dir = postgres_bin_dir()
        self.port = free_port()
        self.temp_dir = _make_postgres_temp_dir(temp_prefix)
        self.data_dir = self.temp_dir / "data"
        self.socket_dir = self.temp_dir / "sock"
        self.log_path = self.temp_dir / "postgres.log"
        self.socket_dir.mkdir()
        _give_to_postgres(self.socket_dir)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@{HOST}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """Return the live postmaster's pid from postmaster.pid, if any."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _pid_is_alive(pid) else None

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    @property
    def is_ready(self) -> bool:
        """True if the postmaster is alive and accepts TCP connections."""
        return self.is_running and port_is_open(self.port)

    def initdb(self) -> None:
        """Create the cluster unless it already exists."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._run_tool("initdb", "-D", str(self.data_dir), *INITDB_ARGS)

    def start(self) -> None:
        """initdb if needed, then ``pg_ctl -w start`` (no-op if running)."""
        if self.is_running:
            return
        self.initdb()
        self._clear_crash_leftovers()
        self._pg_ctl("start", "-l", str(self.log_path), "-o", self._server_options())

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl -w stop -m mode`` (smart, fast or immediate); no-op if not running."""
        if self.is_running:
            self._pg_ctl("stop", "-m", mode)

    def kill(self) -> None:
        """SIGKILL the postmaster, then every other server process; wait for the port to close."""
        postmaster = self.pid
        if postmaster is not None:
            _sigkill(postmaster)
        self._clear_crash_leftovers()

    def restart(self) -> None:
        self.stop()
        self.start()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (tuples-only, unaligned) and return its output."""
        argv = [str(self.bin_dir / "psql"), *PSQL_ARGS, "-d", self.dsn(database), "-c", sql]
        return self._run(argv, what=f"psql {sql!r}").stdout

    def create_database(self, name: str) -> None:
        self.psql(f'CREATE DATABASE "{_check_identifier(name)}"')

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{_check_identifier(name)}" WITH (FORCE)')

    def close(self) -> None:
        """Stop the server (immediate, SIGKILL as a fallback) and remove its temp dir."""
        try:
            with contextlib.suppress(ServerError):
                self.stop("immediate")
            self.kill()
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _server_options(self) -> str:
        options = ["-p", str(self.port), "-k", str(self.socket_dir)]
        for key, value in self.settings.items():
            options += ["-c", f"{key}={value}"]
        return shlex.join(options)

    def _clear_crash_leftovers(self) -> None:
        """SIGKILL processes still working in the data dir, then delete their stale lock files.

        A killed postmaster may linger as an unreaped zombie (slow or absent init reaper); its
        pid in postmaster.pid and the socket lock file would make postgres refuse to start.
        """
        wait_until(
            lambda: not self._kill_leftovers() and not port_is_open(self.port),
            what=f"processes using {self.data_dir} to exit and port {self.port} to close",
            timeout=self.timeout,
            logs=(self.log_path,),
        )
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        (self.socket_dir / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)

    def _kill_leftovers(self) -> bool:
        """SIGKILL every live process working in the data dir; return True if there were any."""
        pids = _pids_with_cwd(self.data_dir)
        for pid in pids:
            _sigkill(pid)
        return bool(pids)

    def _pg_ctl(self, action: str, *args: str) -> None:
        timeout = str(int(self.timeout))
        self._run_tool("pg_ctl", action, "-w", "-t", timeout, "-D", str(self.data_dir), *args)

    def _run_tool(self, tool: str, *args: str) -> None:
        """Run a server-side tool (initdb, pg_ctl), as the postgres user when root."""
        argv = [str(self.bin_dir / tool), *args]
        if _running_as_root():
            argv = ["runuser", "-u", PG_USER, "--", *argv]
        self._run(argv, what=f"{tool} {args[0]}")

    def _run(self, argv: list[str], *, what: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            cwd=self.temp_dir,
            env=_pg_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.timeout + 10,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(
                f"{what} failed with exit code {result.returncode}\n"
                f"{result.stdout}{result.stderr}\n{log_tail(self.log_path)}"
            )
        return result


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name
