"""SIGTERM to a real `fleetlog serve` under load: it drains, stores every log it acknowledged,
ends its live tails, and exits 0 within FLEETLOG_SHUTDOWN_TIMEOUT."""

import signal
import threading

import httpx
import pytest

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
    server = Server(data_dir, workers=workers, env={"FLEETLOG_SHUTDOWN_TIMEOUT": str(BOUND_S)})
    server.start()
    try:
        server.wait_ready()
        opened = threading.Event()
        tail = follow(server.url, opened)
        assert opened.wait(timeout=30)
        with SteadyLoad(server.url, senders=8) as load:
            load.wait_acknowledged(2_000)
            code = server.signal(signal.SIGTERM, within=BOUND_S + SLACK_S)
    finally:
        server.stop()
    assert code == 0, server.output()
    tail.join(timeout=SLACK_S)
    assert not tail.is_alive(), "the live tail was left open"
    assert not load.refused
    assert set(load.acknowledged) <= stored_ids(data_dir)
    assert "ERROR" not in server.output()
