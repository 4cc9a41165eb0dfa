"""`fleetlog alerts …` against a real server (embedded, with Redis), with an admin key."""

import asyncio
import json

from typer.testing import CliRunner, Result

from fleetlog.auth.principals import Scope
from fleetlog.cli import app
from tests.fixtures.auth import add_key, secure_settings
from tests.fixtures.process import running_server


def fleetlog(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_rules_and_targets_are_managed_from_the_terminal(tmp_path, redis_url):
    data_dir = tmp_path / "data"
    admin = asyncio.run(add_key(secure_settings(data_dir), "admin", Scope.ADMIN))
    server_env = {"FLEETLOG_REDIS_URL": redis_url}
    with running_server(data_dir, env=server_env) as server:
        env = {"FLEETLOG_URL": server.url, "FLEETLOG_API_KEY": admin}
        added = fleetlog("alerts", "targets", "add", "ops", "http://127.0.0.1:9/hook", env=env)
        assert added.exit_code == 0, added.output
        assert added.stdout.strip().startswith("whsec_")
        rule = ["alerts", "rules", "add", "pumps", "--silence", "--query", "device:pump-*"]
        assert fleetlog(*rule, "--window", "15m", "--target", "ops", env=env).exit_code == 0
        listed = fleetlog("alerts", "rules", "list", "--json", env=env)
        assert [
            (each["name"], each["kind"], each["window"]) for each in json.loads(listed.stdout)
        ] == [("pumps", "silence", 900)]
        refused = fleetlog("alerts", "rules", "add", "bad", "--window", "90s", env=env)
        assert refused.exit_code == 1
        assert "window" in refused.stderr
        status = json.loads(fleetlog("alerts", "status", "--json", env=env).stdout)
        assert status["evaluated"] is True
        jobs = json.loads(fleetlog("alerts", "jobs", env=env).stdout)
        assert jobs["queues"][0]["name"] == "webhooks"
        assert fleetlog("alerts", "rules", "remove", "pumps", env=env).exit_code == 0
        assert fleetlog("alerts", "targets", "remove", "ops", env=env).exit_code == 0
