"""A throwaway PostgreSQL cluster (initdb + pg_ctl; as `postgres` when root)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from fleetlog.localstack.process import (
    HOST,
    TEMP_PREFIX,
    LocalServer,
    ServerError,
    free_port,
    log_tail,
    pid_is_alive,
    pids_with_cwd,
    port_is_open,
    sigkill,
    wait_until,
)

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
        return pid if pid_is_alive(pid) else None

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
            sigkill(postmaster)
        self._clear_crash_leftovers()

    def restart(self) -> None:
        self.stop()
        self.start()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (tuples-only, unaligned) and return its output."""
        argv = [str(self.bin_dir / "psql"), *PSQL_ARGS, "-d", self.dsn(database), "-c", sql]
        return self._run(argv, what=f"psql {sql!r}").stdout

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """An empty database, or a copy of `template` (which nobody may be connected to)."""
        copy = f' TEMPLATE "{_check_identifier(template)}"' if template else ""
        self.psql(f'CREATE DATABASE "{_check_identifier(name)}"{copy}')

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
        pids = pids_with_cwd(self.data_dir)
        for pid in pids:
            sigkill(pid)
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
