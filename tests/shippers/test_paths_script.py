"""scripts/shipper_paths.py, which docs/benchmarks.md quotes, runs on today's code."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "scripts" / "shipper_paths.py"
LINE = re.compile(r"(\S+) +(\d+\.\d\d) µs per log \((\d+\.\d\d)× bulk\)")


def test_it_gives_each_protocols_cpu_per_log_against_bulk() -> None:
    ran = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "2"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = [LINE.fullmatch(line) for line in ran.stdout.splitlines()]
    assert all(lines), ran.stdout
    found = {match[1]: (float(match[2]), float(match[3])) for match in lines if match}
    assert list(found) == ["bulk", "otlp", "loki", "es-bulk"]
    assert found["bulk"][1] == 1.0
    assert all(us > 0 for us, _ in found.values())
