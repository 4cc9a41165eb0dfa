"""`fleetlog export` and `fleetlog import` against real servers: a round trip gives the same
logs, a re-run or a resumed import adds nothing, bad lines are named, archives are checked."""

import gzip
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from fleetlog.cli import app
from fleetlog.client.api import LogApi, Search
from fleetlog.client.export import RowCounter, partial_path, write_export
from fleetlog.client.importer import Importer, Tally
from fleetlog.client.sources import Source
from fleetlog.config import Settings
from tests.fixtures.pipeline import pipeline_settings, settings_env, wait_for, worker_process
from tests.fixtures.process import Server, running_server

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
KEPT = ("created_at", "device_id", "log_level", "message", "log_data")


def fleetlog(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"FLEETLOG_API_KEY": ""})


def varied_logs(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "device_id": f"dev-{i % 4}",
            "log_level": LEVELS[i % 5],
            "message": f'reading {i}: “ünïcode” and a\nnewline, "quotes"',
            "log_data": {"i": i, "nested": {"ok": i % 2 == 0, "list": [1.5, None, "x"]}},
            "timestamp": (now - timedelta(minutes=i, microseconds=i * 7)).isoformat(),
        }
        for i in range(n)
    ]


def send(server: Server, logs: list[dict[str, Any]]) -> None:
    for start in range(0, len(logs), 1000):
        batch = {"logs": logs[start : start + 1000]}
        answer = httpx.post(f"{server.url}/api/logs/batch", json=batch, timeout=30)
        assert answer.status_code == 200, answer.text


def found(server: Server) -> list[tuple[Any, ...]]:
    """Every log of the server, oldest first, as what a round trip must keep."""
    with LogApi(server.url) as api:
        pages = api.pages(Search(order="asc", limit=0))
        return [tuple(json.dumps(log[name]) for name in KEPT) for page in pages for log in page]


def stored(data_dir: Path) -> int:
    path = Settings(_env_file=None, data_dir=data_dir).sqlite_path
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM logs").fetchone()[0])


@pytest.fixture
def source_server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "source") as server:
        yield server


@pytest.fixture
def target_server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "target") as server:
        yield server


class TestRoundTrip:
    def test_export_then_import_gives_the_same_logs(
        self, source_server: Server, target_server: Server, tmp_path: Path
    ):
        send(source_server, varied_logs(40))
        exported = tmp_path / "logs.ndjson.gz"
        result = fleetlog(
            "export", "--url", source_server.url, "--since", "3h", "--gzip", "-o", str(exported)
        )
        assert result.exit_code == 0, result.output
        assert "40 logs written" in result.stderr
        assert not partial_path(exported).exists()
        assert len(gzip.decompress(exported.read_bytes()).splitlines()) == 40

        imported = fleetlog("import", str(exported), "--url", target_server.url)
        assert imported.exit_code == 0, imported.output
        assert "40 imported, 0 skipped (imported before), 0 rejected" in imported.stderr
        assert found(target_server) == found(source_server)

        again = fleetlog("import", str(exported), "--url", target_server.url)
        assert "0 imported, 40 skipped (imported before), 0 rejected" in again.stderr
        assert stored(target_server.data_dir) == 40

    def test_csv_export_names_its_columns(self, source_server: Server, tmp_path: Path):
        send(source_server, varied_logs(3))
        exported = tmp_path / "logs.csv"
        result = fleetlog("export", "level>=warning", "--url", source_server.url, "--format",
                          "csv", "-o", str(exported))  # fmt: skip
        assert result.exit_code == 0, result.output
        header, *rows = exported.read_bytes().split(b"\r\n")
        assert header == b"id,device_id,log_level,message,log_data,created_at,received_at"
        assert b"WARNING" in exported.read_bytes()
        assert b"DEBUG" not in exported.read_bytes()

    async def test_into_the_pipeline(
        self, source_server: Server, tmp_path: Path, redis_url: str, pg_url: str
    ):
        send(source_server, varied_logs(25))
        exported = tmp_path / "logs.ndjson"
        assert fleetlog("export", "--url", source_server.url, "-o", str(exported)).exit_code == 0
        settings = pipeline_settings(redis_url, pg_url, tmp_path)
        env = settings_env(settings)
        with (
            worker_process(settings, tmp_path / "worker.log"),
            running_server(tmp_path / "pipeline", env=env) as target,
        ):
            imported = fleetlog("import", str(exported), "--url", target.url)
            assert imported.exit_code == 0, imported.output

            async def all_stored() -> bool:
                return len(found(target)) == 25

            await wait_for(all_stored, what="the worker to store the imported logs")
            assert found(target) == found(source_server)


class TestResume:
    def test_an_interrupted_import_resumed_stores_nothing_twice(
        self, target_server: Server, tmp_path: Path
    ):
        exported = tmp_path / "logs.ndjson"
        exported.write_text("".join(json.dumps(log) + "\n" for log in varied_logs(2500)))

        def stop_after_two_chunks(tally: Tally) -> None:
            if tally.imported == 2000:
                raise KeyboardInterrupt

        with LogApi(target_server.url) as api, pytest.raises(KeyboardInterrupt):
            Importer(api, progress=stop_after_two_chunks).run(Source(exported))
        assert stored(target_server.data_dir) == 2000

        resumed = fleetlog("import", str(exported), "--url", target_server.url)
        assert resumed.exit_code == 0, resumed.output
        assert "500 imported, 2,000 skipped (imported before), 0 rejected" in resumed.stderr
        assert stored(target_server.data_dir) == 2500


def gzipped_lines(lines: list[str]) -> bytes:
    return gzip.compress("".join(line + "\n" for line in lines).encode(), mtime=0)


def write_archive(directory: Path, files: dict[str, bytes], **damaged: str) -> None:
    directory.mkdir()
    entries = []
    for name, data in files.items():
        (directory / name).write_bytes(data)
        sha256 = damaged.get(name, hashlib.sha256(data).hexdigest())
        entries.append({"name": name, "day": name[:10], "rows": 0, "bytes": len(data),
                        "sha256": sha256})  # fmt: skip
    manifest = {"version": 1, "files": entries}
    (directory / "manifest.json").write_text(json.dumps(manifest))


class TestArchives:
    def test_an_archive_is_imported_and_each_bad_line_named(
        self, target_server: Server, tmp_path: Path
    ):
        good = [json.dumps(log) for log in varied_logs(3)]
        old = {**varied_logs(1)[0], "timestamp": "2020-01-01T00:00:00Z"}
        bad_level = {**varied_logs(1)[0], "log_level": "LOUD"}
        archive = tmp_path / "archive"
        write_archive(
            archive,
            {
                "2026-11-29.ndjson.gz": gzipped_lines(good[:2]),
                "2026-11-30.ndjson.gz": gzipped_lines(
                    [good[2], "{not json", json.dumps(old), json.dumps(bad_level)]
                ),
            },
        )
        result = fleetlog("import", str(archive), "--url", target_server.url)
        assert result.exit_code == 1
        assert "3 imported, 0 skipped (imported before), 3 rejected" in result.stderr
        day = archive / "2026-11-30.ndjson.gz"
        assert f"{day}:2: not JSON" in result.stderr
        assert f"{day}:3: logs[1].timestamp:" in result.stderr
        assert f"{day}:4: logs[2].log_level:" in result.stderr
        assert "FLEETLOG_MAX_EVENT_AGE" in result.stderr
        assert stored(target_server.data_dir) == 3

    def test_a_file_whose_checksum_differs_from_the_manifest_is_refused(
        self, target_server: Server, tmp_path: Path
    ):
        data = gzipped_lines([json.dumps(log) for log in varied_logs(2)])
        archive = tmp_path / "archive"
        write_archive(archive, {"2026-11-30.ndjson.gz": data}, **{"2026-11-30.ndjson.gz": "0" * 64})
        result = fleetlog("import", str(archive), "--url", target_server.url)
        assert result.exit_code == 1
        assert "not the manifest's" in result.stderr
        assert stored(target_server.data_dir) == 0


def test_an_export_cut_short_leaves_only_its_partial_file(tmp_path: Path):
    def cut_short() -> Iterator[bytes]:
        yield b'{"id": 1}\n'
        raise KeyboardInterrupt

    output = tmp_path / "logs.ndjson"
    with pytest.raises(KeyboardInterrupt):
        write_export(cut_short(), output, counter=RowCounter.of(csv=False, gzip=False),
                     progress=lambda rows, size: None)  # fmt: skip
    assert not output.exists()
    assert partial_path(output).read_bytes() == b'{"id": 1}\n'
