"""The processes `fleetlog up` runs: started, watched, restarted when they die, stopped."""

import ctypes
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# A child that keeps dying is restarted at most this often, as systemd's RestartSec does.
RESTART_INTERVAL_S = 1.0


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if `fleetlog up` itself is killed (kill -9)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process; `stop_signal` is how it stops gracefully."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stop_signal: signal.Signals = signal.SIGTERM
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = field(default=0.0)

    def start(self) -> None:
        # Its own session: a Ctrl-C in the terminal reaches `fleetlog up` only, which stops
        # the children in order.
        self.proc = subprocess.Popen(
            self.argv, env=self.env, start_new_session=True, preexec_fn=die_with_parent
        )
        self.started_at = time.monotonic()
        log.info("%s started, pid %d", self.name, self.proc.pid)

    @property
    def exit_code(self) -> int | None:
        """None while running (or not started)."""
        return None if self.proc is None else self.proc.poll()

    def restart_if_dead(self) -> None:
        code = self.exit_code
        if code is None or time.monotonic() - self.started_at < RESTART_INTERVAL_S:
            return
        log.warning("%s exited with %d; restarting it", self.name, code)
        self.start()

    def signal(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, self.stop_signal)

    def wait(self, timeout: float) -> int:
        """Its exit code once it ends; killed if it takes longer than `timeout` seconds."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within %.0f s; killing it", self.name, timeout)
            self.proc.kill()
            return self.proc.wait()

    def wait_stopped(self, timeout: float) -> bool:
        """After `signal`: whether it ended cleanly, by exiting 0 or (when the signal came
        before it had set its handlers, while starting) by the signal itself."""
        code = self.wait(timeout)
        if code not in (0, -self.stop_signal):
            log.error("%s stopped with exit code %d", self.name, code)
            return False
        return True
