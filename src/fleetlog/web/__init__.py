"""The log explorer's assets: built from `ui/` into `static/` and committed (docs/ui.md), so
installing fleetlog needs no Node.js."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
