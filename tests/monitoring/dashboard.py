"""The shipped Grafana dashboard, read as Grafana reads it."""

import json
from collections.abc import Iterator
from typing import Any

from tests.monitoring.prometheus import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "fleetlog.json"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries, inside collapsed rows too."""
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel["panels"]
        else:
            yield panel
