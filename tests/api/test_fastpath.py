"""The ingest fast path answers, and counts, as FastAPI's routing of the same routes does."""

import gzip
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import httpx
import pytest
from prometheus_client import REGISTRY

from fleetlog.api.fastpath import DirectRoute
from fleetlog.auth.principals import Scope
from fleetlog.config import Settings
from fleetlog.ingest import Ingest
from tests.fixtures.app import client_of, running_app
from tests.fixtures.auth import add_key, bearer, secure_settings
from tests.fixtures.records import make_batch, make_log

LIMITS = {
    "max_url_bytes": 2048,
    "max_header_bytes": 4096,
    "max_body_bytes": 64 * 1024,
    "max_backlog": 50,
}
JSON = {"Content-Type": "application/json"}
COUNTED = {
    "fleetlog_http_requests_total",
    "fleetlog_http_request_duration_seconds_count",
    "fleetlog_ingest_rejected_total",
    "fleetlog_auth_refused_total",
    "fleetlog_rate_limited_total",
    "fleetlog_logs_accepted_total",
    "fleetlog_ingest_batch_size_logs_count",
}


class Case(NamedTuple):
    name: str
    status: int
    path: str
    headers: dict[str, str]
    options: dict[str, Any]
    method: str = "POST"


async def chunks_over(limit: int) -> AsyncIterator[bytes]:
    for _ in range(limit // 1024 + 2):
        yield b" " * 1024


def cases(keys: dict[str, str]) -> list[Case]:
    """Every kind of answer of the ingest routes; anew for each app, as a stream is read once."""
    ingest = bearer(keys["ingest"])
    raw = {**ingest, **JSON}
    gzipped = {**raw, "Content-Encoding": "gzip"}
    cap = LIMITS["max_body_bytes"]
    log, batch = {"json": make_log()}, {"json": make_batch(3)}
    bomb = gzip.compress(b" " * cap * 4)
    return [
        Case("batch", 200, "/api/logs/batch", ingest, batch),
        Case("one", 200, "/api/log", ingest, log),
        Case("x-api-key", 200, "/api/log", {"X-API-Key": keys["ingest"]}, log),
        Case("query", 200, "/api/log?source=x", ingest, log),
        Case("no-credential", 401, "/api/log", {}, log),
        Case("unknown-key", 401, "/api/log", bearer("flk_unknown"), log),
        Case("read-key", 403, "/api/logs/batch", bearer(keys["read"]), batch),
        Case("other-devices", 403, "/api/logs/batch", bearer(keys["sensors"]), batch),
        Case("within-burst", 200, "/api/log", bearer(keys["slow"]), log),
        Case("burst", 200, "/api/log", bearer(keys["slow"]), log),
        Case("over-rate", 429, "/api/log", bearer(keys["slow"]), log),
        Case("long-url", 414, "/api/log?pad=" + "p" * 4096, ingest, log),
        Case("big-headers", 431, "/api/log", {**ingest, "X-Pad": "p" * 8192}, log),
        Case("declared-over-cap", 413, "/api/logs/batch", raw, {"content": b" " * (cap + 1)}),
        Case("chunked-over-cap", 413, "/api/logs/batch", raw, {"content": chunks_over(cap)}),
        Case("inflates-over-cap", 413, "/api/logs/batch", gzipped, {"content": bomb}),
        Case("not-json", 415, "/api/log", {**ingest, "Content-Type": "text/plain"}, log),
        Case("unknown-encoding", 415, "/api/log", {**raw, "Content-Encoding": "br"}, log),
        Case("broken-json", 400, "/api/log", raw, {"content": b'{"device_id": '}),
        Case("broken-gzip", 400, "/api/log", gzipped, {"content": b"not gzip"}),
        Case("field-rule", 422, "/api/log", ingest, {"json": make_log(log_level="LOUD")}),
        Case("not-an-object", 422, "/api/logs/batch", raw, {"content": b"[]"}),
        Case("backlog-full", 503, "/api/logs/batch", ingest, {"json": make_batch(51)}),
        Case("unexpected", 500, "/api/log", ingest, {"json": make_log(device_id="explode")}),
        Case("get", 405, "/api/log", ingest, {}, "GET"),
        Case("head", 405, "/api/logs/batch", ingest, {}, "HEAD"),
        Case("put", 405, "/api/logs/batch", ingest, batch, "PUT"),
        Case("trailing-slash", 404, "/api/log/", ingest, log),
    ]


def seen(answer: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """What a client sees; of an accepted batch, the fields (its ids and time are new each time)."""
    body = answer.json() if answer.content else None
    headers = dict(answer.headers)
    headers.pop("x-request-id", None)  # new for each request
    if answer.status_code == 200:
        body = sorted(body)
        headers.pop("content-length")
    return answer.status_code, headers, body


def counts() -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
    return Counter(
        {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in REGISTRY.collect()
            for sample in family.samples
            if sample.name in COUNTED
        }
    )


async def answers(settings: Settings, keys: dict[str, str]) -> tuple[dict[str, Any], Counter[Any]]:
    """Each case's answer from a fresh app on `settings`, and what its requests counted."""
    before = counts()
    async with running_app(settings) as app, client_of(app, raise_app_exceptions=False) as client:
        seen_by_case = {
            case.name: seen(
                await client.request(case.method, case.path, headers=case.headers, **case.options)
            )
            for case in cases(keys)
        }
    return seen_by_case, counts() - before


@pytest.fixture
async def secured(tmp_path) -> tuple[Settings, dict[str, str]]:
    settings = secure_settings(tmp_path, **LIMITS)
    keys = {
        "ingest": await add_key(settings, "ingest", Scope.INGEST),
        "read": await add_key(settings, "read", Scope.READ),
        "sensors": await add_key(settings, "sensors", Scope.INGEST, device_prefix="sensor-"),
        "slow": await add_key(settings, "slow", Scope.INGEST, rate=0.01, burst=2),
    }
    return settings, keys


@pytest.fixture
def explode(monkeypatch):
    """Logs of the device "explode" fail ingest with an error fleetlog does not know."""
    accept = Ingest.accept

    async def accept_or_explode(self, logs, **options):
        if any(log.device_id == "explode" for log in logs):
            raise RuntimeError("ingest failed unexpectedly")
        return await accept(self, logs, **options)

    monkeypatch.setattr(Ingest, "accept", accept_or_explode)


@pytest.fixture
def routed(monkeypatch) -> list[str]:
    """The methods of the requests FastAPI's router handed to an ingest route."""
    handle = DirectRoute.handle
    methods: list[str] = []

    async def handle_and_note(self, scope, receive, send):
        methods.append(scope["method"])
        await handle(self, scope, receive, send)

    monkeypatch.setattr(DirectRoute, "handle", handle_and_note)
    return methods


@pytest.mark.usefixtures("explode")
async def test_the_fast_path_answers_and_counts_as_the_router(secured, routed):
    settings, keys = secured
    fast, fast_counts = await answers(settings, keys)
    assert "POST" not in routed
    assert {name: answer[0] for name, answer in fast.items()} == {
        case.name: case.status for case in cases(keys)
    }

    # With tracing on, create_app leaves ingest to the router: the reference to compare with.
    reference, reference_counts = await answers(
        settings.model_copy(update={"otel_tracing": True}), keys
    )
    assert "POST" in routed
    assert fast == reference
    assert fast_counts == reference_counts


@pytest.mark.usefixtures("explode")
async def test_metrics_label_ingest_by_route_template(secured):
    settings, keys = secured
    _, counted = await answers(settings, keys)

    def requests(route: str, method: str, status: int) -> float:
        labels = (("method", method), ("route", route), ("status", str(status)))
        return counted["fleetlog_http_requests_total", labels]

    assert requests("/api/logs/batch", "POST", 200) == 1
    assert requests("/api/log", "POST", 200) == 5
    assert requests("/api/log", "POST", 422) == 1
    assert requests("/api/log", "POST", 500) == 1
    assert requests("/api/log", "GET", 405) == 1
    # Refused before any route is chosen, as every route's are.
    assert requests("unmatched", "POST", 414) == 1
    assert counted["fleetlog_ingest_rejected_total", (("reason", "validation_error"),)] == 2
    assert counted["fleetlog_ingest_rejected_total", (("reason", "backlog_full"),)] == 1


async def test_openapi_still_describes_both_routes(client):
    document = (await client.get("/openapi.json")).json()
    for path, model, answer in [
        ("/api/log", "LogIn", "QueuedLog"),
        ("/api/logs/batch", "LogBatchIn", "QueuedBatch"),
    ]:
        assert set(document["paths"][path]) == {"post"}
        operation = document["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}
        assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{answer}"}
        assert {"400", "401", "403", "413", "415", "422", "429", "503"} <= set(
            operation["responses"]
        )
