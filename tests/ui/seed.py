"""The fleet the browser tests look at, sent through the public ingest API."""

import time
from typing import Any

import httpx

DEVICES = ("cam-1", "cam-2", "pump-7", "gate-3")
MESSAGES = (
    ("INFO", "door opened by badge {n}"),
    ("DEBUG", "heartbeat ok"),
    ("WARNING", "pressure rising on line {n}"),
    ("ERROR", "valve stuck on line {n}"),
    ("INFO", "temperature reading {n}"),
    ("CRITICAL", "pump overheated, shutting down"),
)
LOGS_PER_DEVICE = 60
SPACING_S = 60


def fleet_logs(now: float) -> list[dict[str, Any]]:
    """Logs of every device over the last hour, one a minute, newest last."""
    logs = []
    for minute in range(LOGS_PER_DEVICE):
        for index, device in enumerate(DEVICES):
            level, message = MESSAGES[(minute + index) % len(MESSAGES)]
            logs.append(
                {
                    "device_id": device,
                    "log_level": level,
                    "message": message.format(n=minute % 5),
                    "log_data": {"site": "north" if index % 2 else "south", "line": minute % 5},
                    "timestamp": now - (LOGS_PER_DEVICE - minute) * SPACING_S,
                }
            )
    return logs


def seed(url: str, headers: dict[str, str] | None = None) -> int:
    logs = fleet_logs(time.time())
    answer = httpx.post(f"{url}/api/logs/batch", json={"logs": logs}, headers=headers or {})
    answer.raise_for_status()
    return len(logs)
