"""The `fleetlog` command as operators run it."""

import json

import httpx

from tests.fixtures.process import running_server
from tests.fixtures.records import make_log


def test_json_logs_are_one_object_per_line(tmp_path):
    env = {"FLEETLOG_LOG_FORMAT": "json"}
    with running_server(tmp_path / "data", env=env) as server:
        assert httpx.post(f"{server.url}/api/log", json=make_log()).status_code == 200
    lines = server.output().splitlines()
    entries = [json.loads(line) for line in lines]
    assert all(set(entry) >= {"ts", "level", "logger", "message"} for entry in entries)
    messages = "\n".join(entry["message"] for entry in entries)
    assert "embedded mode" in messages
    assert "synchronous=FULL" in messages
