"""The access log: one line per request, its fields as JSON keys, its id echoed back."""

import json
import logging

import pytest

from fleetlog.auth.principals import Scope
from fleetlog.config import Settings
from fleetlog.ingest import Ingest
from fleetlog.logconfig import JsonFormatter
from tests.fixtures.app import client_of, migrated, running_app
from tests.fixtures.auth import add_key, secure_settings
from tests.fixtures.records import make_batch, make_log


@pytest.fixture
def settings(settings):
    """The embedded app's settings with the access log on (it is off by default)."""
    return settings.model_copy(update={"access_log": True})


@pytest.fixture
def access_lines(caplog):
    """The access log's records, as the JSON lines FLEETLOG_LOG_FORMAT=json writes."""
    caplog.set_level(logging.INFO, logger="fleetlog.access")
    formatter = JsonFormatter()

    def lines():
        return [
            json.loads(formatter.format(record))
            for record in caplog.records
            if record.name == "fleetlog.access"
        ]

    return lines


async def test_an_ingest_request_is_one_line_with_its_fields(client, access_lines):
    answer = await client.post("/api/logs/batch", json=make_batch(3))
    (line,) = access_lines()
    assert line["route"] == "/api/logs/batch"
    assert line["method"] == "POST"
    assert line["status"] == answer.status_code == 200
    assert line["logs_accepted"] == 3
    assert line["principal"] == "anyone"
    assert line["bytes_in"] == len(answer.request.content)
    assert line["bytes_out"] == len(answer.content)
    assert line["duration_ms"] > 0
    assert line["request_id"] == answer.headers["x-request-id"]
    assert line["message"].startswith("POST /api/logs/batch 200 ")


async def test_the_route_is_its_template_never_the_raw_path(client, access_lines):
    await client.post("/api/log", json=make_log(device_id="pump-7"))
    await client.get("/api/logs/pump-7")
    line = access_lines()[-1]
    assert line["route"] == "/api/logs/{device_id}"
    assert line["logs_accepted"] is None
    assert " logs=- by=anyone " in line["message"]


async def test_a_sane_request_id_is_echoed_and_a_strange_one_replaced(client, access_lines):
    sane = await client.get("/health", headers={"X-Request-ID": "ab-12.cd:3_4"})
    strange = await client.get("/health", headers={"X-Request-ID": "a b;" + "x" * 200})
    assert sane.headers["x-request-id"] == "ab-12.cd:3_4"
    assert len(strange.headers["x-request-id"]) == 16
    assert [line["request_id"] for line in access_lines()] == [
        "ab-12.cd:3_4",
        strange.headers["x-request-id"],
    ]


async def test_the_principal_is_named_never_its_secret(tmp_path, access_lines):
    settings = secure_settings(tmp_path / "data").model_copy(update={"access_log": True})
    writer = await add_key(settings, "shipper-eu", Scope.INGEST)
    reader = await add_key(settings, "grafana", Scope.READ)
    async with running_app(settings) as app, client_of(app) as client:
        await client.post("/api/log", json=make_log(), headers={"X-API-Key": writer})
        await client.get("/api/logs/device_001", headers={"X-API-Key": reader})
    lines = access_lines()
    assert [line["principal"] for line in lines] == ["shipper-eu", "grafana"]
    assert not any(writer in json.dumps(line) or reader in json.dumps(line) for line in lines)


async def test_off_by_default_it_writes_nothing_and_echoes_no_id(tmp_path, access_lines):
    async with (
        running_app(await migrated(Settings(_env_file=None, data_dir=tmp_path / "data"))) as app,
        client_of(app) as client,
    ):
        answer = await client.post("/api/log", json=make_log())
    assert answer.status_code == 200
    assert "x-request-id" not in answer.headers
    assert access_lines() == []


async def test_an_unhandled_error_names_the_request_the_access_log_names(
    app, access_lines, caplog, monkeypatch
):
    async def explode(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Ingest, "accept", explode)
    async with client_of(app, raise_app_exceptions=False) as client:
        answer = await client.post("/api/log", json=make_log())
    assert answer.status_code == 500
    (error,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    (line,) = access_lines()
    assert line["status"] == 500
    assert error.fields == {"request_id": line["request_id"]}
