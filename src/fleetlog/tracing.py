"""OpenTelemetry traces of fleetlog itself: a request's span (FastAPI's own, around validation
and the enqueue), and the worker's span per batch (COPY and acknowledgement), linked back to
the requests whose entries it stored.

The link travels in the stream entry: with tracing on, the queue adds the request's W3C
`traceparent` to each entry as field `t` (queue/redis_streams.py); with it off, entries and
their cost stay as they were. A few manual spans, no auto-instrumentation.
"""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, TraceFlags

from fleetlog.config import Settings

tracer = trace.get_tracer("fleetlog")

STANDARD_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def exporting(settings: Settings) -> bool:
    """Whether spans are to be sent somewhere: FLEETLOG_OTEL_ENDPOINT or OpenTelemetry's own."""
    return settings.otel_endpoint is not None or any(os.environ.get(n) for n in STANDARD_ENDPOINTS)


def tracing_on(settings: Settings) -> bool:
    """FLEETLOG_OTEL_TRACING alone traces into a provider the process installed itself."""
    return settings.otel_tracing or exporting(settings)


@contextmanager
def exporting_spans(settings: Settings, *, service: str) -> Iterator[None]:
    """While open, spans go over OTLP/HTTP to the configured endpoint; flushed on exit."""
    if not exporting(settings):
        yield
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # FLEETLOG_OTEL_ENDPOINT is a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is; else the
    # exporter reads the standard variables itself.
    base = settings.otel_endpoint
    exporter = OTLPSpanExporter(endpoint=None if base is None else f"{base.rstrip('/')}/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        provider.shutdown()


def traceparent() -> bytes:
    """The current span's context as a W3C `traceparent`; empty outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return b""
    return b"00-%032x-%016x-%02x" % (context.trace_id, context.span_id, context.trace_flags)


def link_to(parent: bytes) -> Link | None:
    """A link to the span a `traceparent` names; None if it names none."""
    parts = parent.split(b"-")
    if len(parts) != 4 or parts[0] != b"00":
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return Link(context) if context.is_valid else None


@contextmanager
def batch_span(shards: Sequence[int], parents: Sequence[bytes]) -> Iterator[None]:
    """The worker's span around storing one batch, linked to the requests it came from."""
    links = [link for parent in parents if parent and (link := link_to(parent))]
    with tracer.start_as_current_span(
        "fleetlog.worker.batch", links=links, attributes={"fleetlog.shards": list(shards)}
    ):
        yield
