import contextlib
import gc

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.app import client_of, running_app
from tests.fixtures.records import make_batch, make_log


def samples(text):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
async def store_gone(app):
    """The SQLite file replaced by a directory: every connection to the store fails."""
    services = app.state.services
    await services.store.engine.dispose()
    path = services.settings.sqlite_path
    # The retention pass that runs as the server starts may open the file again meanwhile.
    while not path.is_dir():
        path.unlink(missing_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir()


@pytest.fixture
async def cramped(settings):
    """A client of an app that wants more free disk than any disk has."""
    wanting = settings.model_copy(update={"min_free_disk_bytes": 2**62})
    async with running_app(wanting) as application, client_of(application) as http:
        yield http


class TestHealth:
    async def test_healthy_in_the_reference_shape(self, client):
        answer = await client.get("/health")
        body = answer.json()
        assert answer.status_code == 200
        assert body["status"] == "healthy"
        assert body["mode"] == "embedded"
        assert body["checks"] == {"sqlite": True, "queue": True, "commit": True, "disk": True}
        assert {"instance", "timestamp"} <= set(body)

    async def test_degraded_but_alive_when_the_store_refuses_writes(self, cramped):
        answer = await cramped.get("/health")
        assert answer.status_code == 200
        assert answer.json()["status"] == "degraded"
        assert answer.json()["checks"]["disk"] is False

    async def test_unhealthy_when_the_store_is_gone(self, client, store_gone):
        answer = await client.get("/health")
        assert answer.status_code == 503
        assert answer.json()["checks"]["sqlite"] is False


class TestReadiness:
    async def test_ready_with_an_empty_backlog(self, client, settings):
        answer = await client.get("/ready")
        body = answer.json()
        assert answer.status_code == 200
        assert body["ready"] is True
        assert body["backlog"] == 0
        assert body["max_backlog"] == settings.max_backlog

    async def test_not_ready_when_the_store_refuses_writes(self, cramped):
        answer = await cramped.get("/ready")
        assert answer.status_code == 503
        assert answer.json()["checks"]["disk"] is False

    async def test_not_ready_when_a_check_fails(self, client, store_gone):
        answer = await client.get("/ready")
        assert answer.status_code == 503
        assert answer.json()["ready"] is False


class TestMetrics:
    async def test_counts_by_route_template_and_level(self, client):
        before = samples((await client.get("/metrics")).text)
        await client.post("/api/logs/batch", json=make_batch(3, log_level="ERROR"))
        await client.post("/api/log", json=make_log(log_level="LOUD"))
        await client.get("/api/logs/some-device")
        await client.get("/api/logs/another-device")
        text = (await client.get("/metrics")).text
        after = samples(text)

        def grew(name, *labels):
            return after.get((name, labels), 0) - before.get((name, labels), 0)

        route = ("route", "/api/logs/{device_id}")
        get_ok = (("method", "GET"), route, ("status", "200"))
        assert grew("fleetlog_http_requests_total", *get_ok) == 2
        bad = (("method", "POST"), ("route", "/api/log"), ("status", "422"))
        assert grew("fleetlog_http_requests_total", *bad) == 1
        assert grew("fleetlog_logs_accepted_total", ("level", "ERROR")) == 3
        assert grew("fleetlog_ingest_batch_size_logs_count") == 1
        assert grew("fleetlog_ingest_batch_size_logs_sum") == 3
        assert grew("fleetlog_store_commit_seconds_count") == 1
        assert grew("fleetlog_ingest_rejected_total", ("reason", "validation_error")) == 1
        assert "some-device" not in text
        assert "device_id=" not in text

    async def test_unmatched_paths_share_one_label(self, client):
        await client.get("/no/such/path/12345")
        text = (await client.get("/metrics")).text
        assert "/no/such/path" not in text
        assert 'route="unmatched"' in text


class TestServiceInfo:
    async def test_root_names_the_routes(self, client):
        body = (await client.get("/")).json()
        assert body["service"] == "fleetlog"
        assert body["endpoints"]["create_log"] == "POST /api/log"

    async def test_openapi_declares_the_ingest_bodies(self, client):
        document = (await client.get("/openapi.json")).json()
        body = document["paths"]["/api/logs/batch"]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/LogBatchIn"
        schemas = document["components"]["schemas"]
        assert schemas["LogBatchIn"]["properties"]["logs"]["items"]["$ref"].endswith("/LogIn")
        assert "LogIn" in schemas

    async def test_docs_and_redoc_are_served(self, client):
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/redoc")).status_code == 200


async def test_startup_hides_the_app_from_the_garbage_collector(settings):
    gc.unfreeze()
    async with running_app(settings):
        assert gc.get_freeze_count() > 10_000
