"""SIGTERM to a real `fleetlog serve` under load: it drains, stores every log it acknowledged,
ends its live tails and syslog connections, and exits 0 within FLEETLOG_SHUTDOWN_TIMEOUT."""

import signal
import socket
import threading

import httpx
import pytest

from fleetlog.localstack import free_port
from tests.fixtures.load import SteadyLoad
from tests.fixtures.process import Server
from tests.test_serve import stored_ids

BOUND_S = 5
# Beyond the bound: the last group commit and the process's own exit.
SLACK_S = 10


def follow(url: str, opened: threading.Event) -> threading.Thread:
    """A live tail held open until the server ends it."""

    def read() -> None:
        with httpx.stream("GET", f"{url}/api/tail", timeout=None) as answer:
            opened.set()
            for _ in answer.iter_bytes():
                pass

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_stores_every_acknowledged_log_and_exits_0(tmp_path, workers):
    data_dir = tmp_path / "data"
    syslog_port = free_port()
    env = {"FLEETLOG_SHUTDOWN_TIMEOUT": str(BOUND_S), "FLEETLOG_SYSLOG_PORT": str(syslog_port)}
    server = Server(data_dir, workers=workers, env=env)
    server.start()
    try:
        server.wait_ready()
        opened = threading.Event()
        tail = follow(server.url, opened)
        assert opened.wait(timeout=30)
        # A syslog sender's connection, held open as shippers hold theirs.
        syslog = socket.create_connection(("127.0.0.1", syslog_port))
        syslog.sendall(b"<34>1 2026-11-30T20:00:00Z host app - - - held open\n")
        with SteadyLoad(server.url, senders=8) as load:
            load.wait_acknowledged(2_000)
            code = server.signal(signal.SIGTERM, within=BOUND_S + SLACK_S)
    finally:
        server.stop()
    syslog.close()
    assert code == 0, server.output()
    tail.join(timeout=SLACK_S)
    assert not tail.is_alive(), "the live tail was left open"
    assert not load.refused
    assert set(load.acknowledged) <= stored_ids(data_dir)
    assert "ERROR" not in server.output()
