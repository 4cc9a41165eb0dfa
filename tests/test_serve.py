"""`fleetlog serve` as a real process: the smoke path, kill -9 durability, several workers."""

import contextlib
import signal
import sqlite3
import threading

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.process import Server, running_server
from tests.fixtures.records import make_batch, make_log


def stored_ids(data_dir):
    # Closed at once: an open connection would keep `fleetlog restore` from the database.
    with contextlib.closing(sqlite3.connect(data_dir / "fleetlog.sqlite3")) as db:
        return {str(row[0]) for row in db.execute("SELECT id FROM logs")}


def accepted_total(metrics_text):
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "fleetlog_logs_accepted"
        for sample in family.samples
        if sample.name == "fleetlog_logs_accepted_total"
    )


def test_smoke_path(tmp_path):
    with running_server(tmp_path / "data") as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/api/log", json=make_log(device_id="smoke")).status_code == 200
        assert (
            http.post("/api/logs/batch", json=make_batch(4, device_id="smoke")).status_code == 200
        )
        assert http.get("/api/logs/smoke").json()["total"] == 5
        assert http.get("/api/stats").json()["total_logs"] == 5
        assert http.get("/docs").status_code == 200
        assert accepted_total(http.get("/metrics").text) == 5
    assert "embedded mode" in server.output()
    assert "fleetlog.sqlite3" in server.output()


def test_the_default_store_commits_with_synchronous_full(tmp_path):
    with running_server(tmp_path / "data") as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/api/log", json=make_log()).status_code == 200
    # The writer reports the PRAGMAs its own connection runs with; kill -9 tests pass with OFF.
    assert "journal_mode=wal synchronous=FULL" in server.output()


def test_kill_9_loses_no_acknowledged_log(tmp_path):
    data_dir = tmp_path / "data"
    server = Server(data_dir)
    server.start()
    server.wait_ready()
    acknowledged: list[str] = []
    enough = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(10_000):
                try:
                    answer = http.post(
                        "/api/logs/batch", json=make_batch(5, device_id=f"k{worker}")
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    acknowledged.extend(answer.json()["message_ids"])
                if i == 20:
                    enough.set()

    senders = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for sender in senders:
        sender.start()
    assert enough.wait(timeout=60)
    server.signal(signal.SIGKILL)
    for sender in senders:
        sender.join(timeout=60)
    assert len(acknowledged) >= 100
    missing = set(acknowledged) - stored_ids(data_dir)
    assert not missing


def test_several_workers_share_the_store_and_the_metrics(tmp_path):
    data_dir = tmp_path / "data"
    with running_server(data_dir, workers=2) as server:
        acknowledged: list[str] = []

        def send(worker: int) -> None:
            with httpx.Client(base_url=server.url) as http:
                for _ in range(25):
                    answer = http.post(
                        "/api/logs/batch", json=make_batch(4, device_id=f"w{worker}")
                    )
                    assert answer.status_code == 200
                    acknowledged.extend(answer.json()["message_ids"])

        senders = [threading.Thread(target=send, args=(n,)) for n in range(8)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        with httpx.Client(base_url=server.url) as http:
            metrics_text = http.get("/metrics").text
            assert http.get("/api/stats").json()["max_age_s"] == 60
    assert len(set(acknowledged)) == 800
    assert set(acknowledged) == stored_ids(data_dir)
    assert accepted_total(metrics_text) == 800
    assert "2 process(es)" in server.output()
