"""Traces in the pipeline, with real Redis and PostgreSQL: the request's span, the worker's
batch span, and the link from the batch back to each request whose entry it stored."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from fleetlog.config import Settings
from fleetlog.keys import Keys
from fleetlog.tracing import link_to, traceparent
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import Table, make_record, running_worker, wait_for
from tests.fixtures.records import make_batch, make_log

EXPORTED = InMemorySpanExporter()


@pytest.fixture(scope="module")
def provider() -> TracerProvider:
    """The process's one tracer provider (OpenTelemetry allows one), into memory."""
    installed = trace.get_tracer_provider()
    if not isinstance(installed, TracerProvider):
        installed = TracerProvider()
        installed.add_span_processor(SimpleSpanProcessor(EXPORTED))
        trace.set_tracer_provider(installed)
    return installed


@pytest.fixture
def spans(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    EXPORTED.clear()
    yield EXPORTED
    EXPORTED.clear()


@pytest.fixture
async def traced(pipeline: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_app(pipeline.model_copy(update={"otel_tracing": True})) as app,
        client_of(app) as http,
    ):
        yield http


def named(spans: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name.startswith(prefix)]


async def test_the_batch_span_links_to_the_requests_it_stored(
    traced, pipeline, spans, table: Table
):
    one = await traced.post("/api/log", json=make_log())
    keyed = {"Idempotency-Key": "traced-batch-1"}
    batch = await traced.post("/api/logs/batch", json=make_batch(4), headers=keyed)
    assert one.status_code == batch.status_code == 200
    requests = named(spans, "POST /api/log")  # /api/log and /api/logs/batch
    assert len(requests) == 2
    assert all(span.kind is trace.SpanKind.SERVER for span in requests)
    # The traced script marks a keyed request's entry as the plain one does: a retry is
    # answered from the mark, with the same ids.
    again = await traced.post("/api/logs/batch", json=make_batch(4), headers=keyed)
    assert again.json()["message_ids"] == batch.json()["message_ids"]

    async with running_worker(pipeline):

        async def stored() -> bool:
            return await table.has(5)

        await wait_for(stored, what="the worker to store 5 logs")

        async def linked() -> bool:
            batches = named(spans, "fleetlog.worker.batch")
            return sum(len(span.links) for span in batches) >= 2

        await wait_for(linked, what="the batch spans to end")

    batches = named(spans, "fleetlog.worker.batch")
    links = {(link.context.trace_id, link.context.span_id) for b in batches for link in b.links}
    assert {(span.context.trace_id, span.context.span_id) for span in requests} <= links


async def test_the_batch_span_ends_once_its_logs_are_stored_and_acknowledged(
    traced, pipeline, spans, redis: Redis, table: Table
):
    await traced.post("/api/logs/batch", json=make_batch(3))
    (request,) = named(spans, "POST /api/logs/batch")
    async with running_worker(pipeline):

        async def batch_ended() -> bool:
            return any(span.links for span in named(spans, "fleetlog.worker.batch"))

        await wait_for(batch_ended, what="the batch span to end")
        # Stored, then acknowledged and deleted from its stream, before the span ended.
        assert await table.has(3)
        keys = Keys(pipeline.redis_namespace)
        assert [await redis.xlen(keys.stream(n)) for n in range(pipeline.stream_shards)] == [
            0
        ] * pipeline.stream_shards
    (batch,) = [span for span in named(spans, "fleetlog.worker.batch") if span.links]
    assert batch.start_time is not None
    assert request.end_time is not None
    assert batch.start_time > request.end_time


async def test_untraced_entries_keep_their_two_fields(queue, redis: Redis, pipeline, spans):
    with trace.get_tracer("test").start_as_current_span("a request"):
        (message_id, _) = await queue.put([make_record(), make_record()])
    shard = int(message_id.split("-", 1)[0])
    ((_, fields),) = await redis.xrange(Keys(pipeline.redis_namespace).stream(shard))
    assert set(fields) == {b"n", b"b"}


def test_a_traceparent_names_the_span_it_links_to():
    assert traceparent() == b""
    assert link_to(b"") is None
    assert link_to(b"00-zz-01-01") is None
    link = link_to(b"00-%032x-%016x-01" % (7, 9))
    assert link is not None
    assert (link.context.trace_id, link.context.span_id) == (7, 9)
