"""`fleetlog migrate` up and down; `fleetlog backup` of a serving store, and its restore."""

import sqlite3

import httpx
import pytest
from typer.testing import CliRunner

from fleetlog.cli import app
from fleetlog.store.backup import BackupRefused, backup_sqlite, restore_sqlite
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
    @pytest.mark.parametrize(
        ("command", "tool"), [("backup", "pg_dump"), ("restore", "pg_restore")]
    )
    def test_refuses_postgresql_and_points_to_its_tool(self, tmp_path, command, tool):
        env = {"FLEETLOG_DATABASE_URL": "postgresql://x/y", "FLEETLOG_REDIS_URL": "redis://x"}
        result = CliRunner().invoke(app, [command, str(tmp_path / "b")], env=env)
        assert result.exit_code == 2
        assert tool in result.output
        assert not (tmp_path / "b").exists()

    def test_a_copy_taken_while_serving_restores_every_log_acknowledged_before(self, tmp_path):
        data_dir = tmp_path / "data"
        live = data_dir / "fleetlog.sqlite3"
        copy = tmp_path / "backup.sqlite3"
        with running_server(data_dir) as server, SteadyLoad(server.url) as load:
            before = load.wait_acknowledged(2_000)
            copied = backup_sqlite(live, copy)
            with pytest.raises(BackupRefused, match="stop it before restoring"):
                restore_sqlite(copy, live)
        assert copied >= len(before)
        assert len(stored_ids(data_dir)) > copied, "no log came after the backup"
        assert restore_sqlite(copy, live) == copied
        with running_server(data_dir) as server, httpx.Client(base_url=server.url) as http:
            assert http.get("/api/stats").json()["total_logs"] == copied
        assert before <= stored_ids(data_dir)

    def test_restore_refuses_what_is_not_a_backup(self, tmp_path):
        damaged = tmp_path / "not-a-backup"
        damaged.write_bytes(b"SQLite format 3\0" + b"x" * 4096)
        with pytest.raises(BackupRefused, match="not a backup of fleetlog"):
            restore_sqlite(damaged, tmp_path / "data" / "fleetlog.sqlite3")
