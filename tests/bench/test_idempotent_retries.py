"""`fleetlog bench --idempotency-keys` through a kill -9 and restart of the server mid-run:
every request is sent until answered, with its key, and every log is stored exactly once."""

import asyncio
import json
import signal
import sqlite3
import sys
from pathlib import Path

from fleetlog.config import Settings
from tests.bench.runs import STABLE_KEYS
from tests.fixtures.pipeline import wait_for
from tests.fixtures.process import running_server

LOGS = 5 * 100 * 4  # devices × 100 logs × iterations


def stored_rows(data_dir: Path) -> int:
    path = Settings(_env_file=None, data_dir=data_dir).sqlite_path
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM logs").fetchone()[0])


async def test_a_server_killed_and_restarted_mid_run_loses_and_doubles_nothing(tmp_path: Path):
    data_dir = tmp_path / "data"
    with running_server(data_dir) as server:
        bench = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleetlog", "bench", "--json", "--idempotency-keys",
            "--url", server.url, "--data-dir", str(data_dir),
            "--devices", "5", "--iterations", "4", "--concurrency", "16",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

        async def some_stored() -> bool:
            return stored_rows(data_dir) >= 400

        await wait_for(some_stored, what="the first logs to be stored")
        server.signal(signal.SIGKILL)
        killed_at = stored_rows(data_dir)
        server.start()
        server.wait_ready()
        out, err = await asyncio.wait_for(bench.communicate(), timeout=120)
    assert bench.returncode == 0, err.decode()
    summary = json.loads(out)
    assert STABLE_KEYS <= summary.keys()
    assert killed_at < LOGS, "the run ended before the server was killed"
    assert summary["workload"]["idempotency_keys"] is True
    assert summary["errors"] == {}
    assert summary["logs_acked"] == LOGS
    assert (summary["lost"], summary["duplicated"], summary["stored_unacknowledged"]) == (0, 0, 0)
    assert stored_rows(data_dir) == LOGS
