"""`GET /api/export` and the export's pages on both stores: every log once, in order, exactly."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from fleetlog.auth.principals import Scope
from fleetlog.config import Settings
from fleetlog.export import Export
from fleetlog.search.plan import Everything
from fleetlog.store.logs import Selection
from tests.fixtures.auth import add_key, secure_settings, serving
from tests.fixtures.pipeline import make_record
from tests.fixtures.records import make_log

pytest_plugins = ["tests.fixtures.stores"]

BASE = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LINE_FIELDS = ["id", "device_id", "log_level", "message", "log_data", "created_at", "received_at"]


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


class TestPages:
    async def test_every_log_once_oldest_first_across_pages(self, store_under_test):
        # Two logs share a time: the id orders them, and a page boundary falls between them.
        times = [at(5), at(1), at(3), at(3), at(2), at(4), at(6)]
        records = [
            make_record(message=f"m{i}", ts=ts, received_at=at(10)) for i, ts in enumerate(times)
        ]
        await store_under_test.add(records)
        selection = Selection(Everything(), ascending=True, timeout=10)
        export = Export(store_under_test.store, selection, fmt="ndjson", page_rows=3)
        await export.start()
        lines = [
            json.loads(line)
            for chunk in [chunk async for chunk in export.chunks()]
            for line in chunk.splitlines()
        ]
        assert [line["message"] for line in lines] == ["m1", "m4", "m2", "m3", "m5", "m0", "m6"]
        assert len({line["id"] for line in lines}) == 7
        assert list(lines[0]) == LINE_FIELDS
        assert lines[0]["created_at"] == "2026-11-30T12:00:01.000000Z"
        assert lines[0]["received_at"] == "2026-11-30T12:00:10.000000Z"
        assert lines[0]["log_data"] == {"value": 0.5}

    async def test_csv_quotes_as_rfc_4180_and_keeps_log_data_compact(self, store_under_test):
        message = 'said "hi", then\nleft'
        log_data = {"a": [1, 2], "b": {"c": "d"}}
        await store_under_test.add([make_record(message=message, log_data=log_data, ts=at(1))])
        selection = Selection(Everything(), ascending=True)
        export = Export(store_under_test.store, selection, fmt="csv")
        data = b"".join([chunk async for chunk in export.chunks()])
        assert data.startswith(
            b"id,device_id,log_level,message,log_data,created_at,received_at\r\n"
        )
        assert b'"said ""hi"", then\nleft"' in data
        [row] = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
        assert row["message"] == message
        assert row["log_data"] == '{"a":[1,2],"b":{"c":"d"}}'
        assert row["created_at"] == "2026-11-30T12:00:01.000000Z"


async def post_logs(http: httpx.AsyncClient, headers: dict[str, str], *devices: str) -> None:
    logs = [make_log(device_id=device, message=f"from {device}") for device in devices]
    answer = await http.post("/api/logs/batch", json={"logs": logs}, headers=headers)
    assert answer.status_code == 200, answer.text


class TestRoute:
    async def test_ndjson_with_a_file_name_and_the_search_language(self, client: httpx.AsyncClient):
        await post_logs(client, {}, "cam-1", "cam-2", "pump-1")
        answer = await client.get("/api/export", params={"q": "device:cam-*", "since": "1h"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/x-ndjson"
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="fleetlog-export-')
        assert disposition.endswith('.ndjson"')
        lines = [json.loads(line) for line in answer.text.splitlines()]
        assert [line["device_id"] for line in lines] == ["cam-1", "cam-2"]

    async def test_gzip_is_a_gzip_file_of_the_same_lines(self, client: httpx.AsyncClient):
        await post_logs(client, {}, "cam-1", "cam-2")
        plain = await client.get("/api/export", params={"format": "csv"})
        zipped = await client.get("/api/export", params={"format": "csv", "gzip": "1"})
        assert zipped.headers["content-type"] == "application/gzip"
        assert zipped.headers["content-disposition"].endswith('.csv.gz"')
        assert gzip.decompress(zipped.content) == plain.content
        assert plain.content.count(b"\r\n") == 3

    async def test_a_bad_query_is_a_400_before_anything_is_sent(self, client: httpx.AsyncClient):
        answer = await client.get("/api/export", params={"q": "level>=loud"})
        assert answer.status_code == 400
        assert answer.json()["detail"][0]["field"] == "q"
        bad_format = await client.get("/api/export", params={"format": "xml"})
        assert bad_format.status_code == 422

    async def test_a_key_bound_to_a_prefix_exports_only_its_devices(self, tmp_path: Path):
        settings: Settings = secure_settings(tmp_path / "data")
        writer = await add_key(settings, "writer", Scope.INGEST)
        reader = await add_key(settings, "cams", Scope.READ, device_prefix="cam-")
        ingest_only = await add_key(settings, "ingest-only", Scope.INGEST, device_prefix="cam-")
        async with serving(settings) as http:
            await post_logs(http, {"X-API-Key": writer}, "cam-1", "pump-1")
            answer = await http.get("/api/export", headers={"X-API-Key": reader})
            refused = await http.get("/api/export", headers={"X-API-Key": ingest_only})
            anonymous = await http.get("/api/export")
        assert [json.loads(line)["device_id"] for line in answer.text.splitlines()] == ["cam-1"]
        assert refused.status_code == 403
        assert anonymous.status_code == 401
