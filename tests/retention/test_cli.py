"""`fleetlog retention …` against a real server, as an admin runs it."""

from pathlib import Path

from typer.testing import CliRunner, Result

from fleetlog.auth.principals import Scope
from fleetlog.cli import app
from tests.fixtures.auth import add_key, secure_settings
from tests.fixtures.process import running_server


def fleetlog(*args: str, url: str, key: str) -> Result:
    env = {"FLEETLOG_URL": url, "FLEETLOG_API_KEY": key}
    return CliRunner().invoke(app, ["retention", *args], env=env)


async def test_rules_are_managed_previewed_and_applied_from_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = secure_settings(data_dir)
    admin = await add_key(settings, "admin", Scope.ADMIN)
    reader = await add_key(settings, "reader", Scope.READ)
    with running_server(data_dir, env={"FLEETLOG_RETENTION_DAYS": "30"}) as server:
        added = fleetlog(
            "rules", "add", "--level", "DEBUG", "--days", "2", url=server.url, key=admin
        )
        assert added.exit_code == 0, added.output
        assert "added rule 1: level DEBUG kept 2 days" in added.output
        listed = fleetlog("rules", "list", url=server.url, key=admin)
        assert "level DEBUG" in listed.output
        assert "FLEETLOG_RETENTION_DAYS" in listed.output
        preview = fleetlog("--dry-run", url=server.url, key=admin)
        assert preview.exit_code == 0, preview.output
        assert "would remove 0 logs" in preview.output
        taken = fleetlog(
            "rules", "add", "--level", "debug", "--days", "3", url=server.url, key=admin
        )
        assert taken.exit_code == 1
        assert "exists already" in taken.output
        refused = fleetlog("rules", "remove", "1", url=server.url, key=reader)
        assert refused.exit_code == 1
        assert "HTTP 403" in refused.output
        removed = fleetlog("rules", "remove", "1", url=server.url, key=admin)
        assert removed.exit_code == 0, removed.output
        applied = fleetlog("apply", url=server.url, key=admin)
        assert applied.exit_code == 0, applied.output
        assert "removed 0 logs" in applied.output
