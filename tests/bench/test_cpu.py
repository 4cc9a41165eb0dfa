"""CPU time of process trees from /proc: reaped children count, a late tree counts once up."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetlog.bench.cpu import CpuClock, cpu_seconds_by_tree
from fleetlog.localstack import wait_until

BURN_S = 0.3
# A child that uses BURN_S of CPU and exits, reaped by a shell that then sleeps as `sleep`.
BURN = f"import time\nt = time.process_time()\nwhile time.process_time() - t < {BURN_S}: pass"


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[bytes]]:
    shell = f"{sys.executable} -c '{BURN}'; exec sleep 60"
    process = subprocess.Popen(["sh", "-c", shell])
    yield process
    process.kill()
    process.wait()


def wait_burnt(process: subprocess.Popen[bytes]) -> None:
    comm = Path(f"/proc/{process.pid}/comm")
    wait_until(lambda: comm.read_text().strip() == "sleep", what="the burn to end", timeout=30)


def test_a_tree_counts_the_children_it_has_reaped(burner):
    wait_burnt(burner)
    seconds = cpu_seconds_by_tree({"shell": [burner.pid], "nothing": []})
    assert seconds["shell"] >= BURN_S - 0.05
    assert seconds["nothing"] == 0


def test_a_tree_with_no_process_at_the_start_counts_from_start_late(burner):
    with subprocess.Popen(["sleep", "60"]) as sleeper:
        trees: dict[str, list[int]] = {"early": [sleeper.pid], "late": []}
        late_started = CpuClock(lambda: trees)
        never_started = CpuClock(lambda: trees)
        wait_burnt(burner)
        trees["late"] = [burner.pid]
        late_started.start_late()
        assert late_started.elapsed() == {"early": 0, "late": pytest.approx(0, abs=0.02)}
        whole = never_started.elapsed()
        assert whole is not None
        assert whole["late"] >= BURN_S - 0.05
        sleeper.kill()


def test_no_process_at_all_is_no_figure():
    assert CpuClock(lambda: {"server": []}).elapsed() is None
