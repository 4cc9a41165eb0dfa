"""Live tail: `GET /api/tail?q=…`, the new logs a query matches as Server-Sent Events."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from fleetlog.api.deps import ServicesDep
from fleetlog.api.errors import ErrorBody, documented
from fleetlog.api.openapi import REF
from fleetlog.api.routes.search import Q
from fleetlog.api.security import AUTH_RESPONSES, Reader
from fleetlog.search.grammar import parse
from fleetlog.search.plan import Device, conjoin
from fleetlog.tail.events import Dropped, TailEvent, TailItem
from fleetlog.tail.hub import Subscription

JSON = "application/json"


def as_json(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Error answers documented as JSON: on an event stream route FastAPI would say they are
    `text/event-stream`."""
    schema = {"$ref": REF.format(model=ErrorBody.__name__)}
    return {
        status: {"description": response["description"], "content": {JSON: {"schema": schema}}}
        for status, response in responses.items()
    }


ERRORS = {
    400: "`q` or the last event id cannot be used",
    422: "A parameter breaks its rule",
    429: "This process serves FLEETLOG_MAX_TAILS tails already, or over the rate limit; "
    "retry after Retry-After seconds",
}
router = APIRouter(tags=["tail"], responses=as_json({**AUTH_RESPONSES, **documented(ERRORS)}))


async def open_subscription(
    services: ServicesDep,
    principal: Reader,
    q: Q = None,
    last_event_id: Annotated[
        str | None, Query(description="Resume after this event (if Last-Event-ID is not sent)")
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event")
    ] = None,
) -> AsyncIterator[Subscription]:
    """The tail of what `q` matches among the principal's devices, held while it streams."""
    plan = parse(q)
    if principal.device_prefix is not None:
        plan = conjoin(plan, Device(principal.device_prefix, prefix=True))
    # A browser reconnects with the URL it began with and the header of its last event.
    resume = last_event_id_header or last_event_id
    hub = services.tail
    after = None if resume is None else hub.resume_point(resume)
    async with hub.subscribe(plan, after=after) as subscription:
        yield subscription


def server_sent(item: TailItem) -> ServerSentEvent:
    if isinstance(item, TailEvent):
        return ServerSentEvent(event="log", id=item.id, raw_data=item.data.decode())
    if isinstance(item, Dropped):
        dropped = orjson.dumps({"dropped": item.count}).decode()
        return ServerSentEvent(event="dropped", raw_data=dropped)
    return ServerSentEvent(comment="ping")


@router.get("/api/tail", response_class=EventSourceResponse)
async def tail(
    subscription: Annotated[Subscription, Depends(open_subscription)],
) -> AsyncIterator[ServerSentEvent]:
    """New logs as they arrive, filtered by `q` (docs/tail.md): `event: log` with the log as
    JSON (its `id` is the store's embedded, the message id the client got in the pipeline),
    `event: dropped` with `{"dropped": n}` when the client fell behind and n logs it wanted
    went by, a `: ping` comment when idle. An event's `id` resumes after it, sent back as
    `Last-Event-ID` or `last_event_id`."""
    async for item in subscription.items():
        yield server_sent(item)
