"""`fleetlog migrate` up and down, and `fleetlog backup` of a serving store restored."""

import shutil
import sqlite3

import httpx
from typer.testing import CliRunner

from fleetlog.cli import app
from fleetlog.store.backup import backup_sqlite
from fleetlog.store.migrate import revisions
from tests.fixtures.load import SteadyLoad
from tests.fixtures.process import running_server
from tests.test_cli import run
from tests.test_serve import stored_ids

REVISIONS = [revision.id for revision in revisions()]


def store_revision(data_dir):
    with sqlite3.connect(data_dir / "fleetlog.sqlite3") as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


class TestMigrate:
    def test_goes_down_and_up_to_a_revision_and_lists_them(self, tmp_path):
        env = {"FLEETLOG_DATA_DIR": str(tmp_path / "data")}
        log_path = tmp_path / "migrate.log"
        code, output = run(["migrate", "--to", "0005"], env=env, log_path=log_path)
        assert code == 0, output
        assert "schema at revision 0005 (embedded)" in output
        assert store_revision(tmp_path / "data") == "0005"
        code, output = run(["migrate", "--history"], env=env, log_path=tmp_path / "history.log")
        assert code == 0, output
        listed = [line for line in output.splitlines() if line[2:6] in REVISIONS]
        assert [line[2:6] for line in listed] == REVISIONS
        assert [line[2:6] for line in listed if line.startswith("*")] == ["0005"]
        code, output = run(["migrate", "--to", "0099"], env=env, log_path=tmp_path / "bad.log")
        assert code == 2
        assert "unknown revision '0099'" in output
        assert store_revision(tmp_path / "data") == "0005"
        assert run(["migrate"], env=env, log_path=log_path)[0] == 0
        assert store_revision(tmp_path / "data") == REVISIONS[-1]


class TestBackup:
    def test_refuses_postgresql_and_points_to_pg_dump(self, tmp_path):
        env = {"FLEETLOG_DATABASE_URL": "postgresql://x/y", "FLEETLOG_REDIS_URL": "redis://x"}
        result = CliRunner().invoke(app, ["backup", str(tmp_path / "b")], env=env)
        assert result.exit_code == 2
        assert "pg_dump" in result.output
        assert not (tmp_path / "b").exists()

    def test_a_copy_taken_while_serving_restores_every_log_acknowledged_before(self, tmp_path):
        data_dir = tmp_path / "data"
        copy = tmp_path / "backup.sqlite3"
        with running_server(data_dir) as server, SteadyLoad(server.url) as load:
            before = load.wait_acknowledged(2_000)
            copied = backup_sqlite(data_dir / "fleetlog.sqlite3", copy)
        assert copied >= len(before)
        restored = tmp_path / "restored"
        restored.mkdir()
        shutil.copy(copy, restored / "fleetlog.sqlite3")
        with running_server(restored) as server, httpx.Client(base_url=server.url) as http:
            assert http.get("/api/stats").json()["total_logs"] == copied
        assert before <= stored_ids(restored)
