"""The reference's ingest routes: one log, or a batch of 1..1000 logs.

They take only the request and reach the services and the gatekeeper through it: FastAPI's
dependency and parameter resolution cost more per request than parsing and queueing five logs.
The app's FastPath calls them before routing (see api/fastpath.py); declared here, they are
what OpenAPI describes, their security declared by hand.
"""

from fastapi import APIRouter, Request, Response

from fleetlog.api.body import parse_json
from fleetlog.api.deps import get_services
from fleetlog.api.fastpath import DirectRoute
from fleetlog.api.middleware import note_accepted
from fleetlog.api.openapi import json_body
from fleetlog.api.security import AUTH_RESPONSES, admit
from fleetlog.auth.principals import Scope
from fleetlog.ingest import alone
from fleetlog.records import LogBatchIn, LogIn, QueuedBatch, QueuedLog

router = APIRouter(tags=["ingest"], route_class=DirectRoute)

RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "The body is not valid JSON, or its encoding is broken"},
    413: {"description": "The body is over the size limit (before or after decompression)"},
    415: {"description": "Content-Type is not JSON, or Content-Encoding is not gzip/deflate"},
    422: {"description": "A field breaks its rule; `detail` names each field and rule"},
    503: {"description": "The backlog or the store cannot take logs now; retry after Retry-After"},
    **AUTH_RESPONSES,
}


SECURITY: dict[str, object] = {"security": [{"bearer": []}, {"apiKey": []}]}


def openapi(model: type[LogIn] | type[LogBatchIn]) -> dict[str, object]:
    return {**json_body(model), **SECURITY}


def json_answer(model: QueuedLog | QueuedBatch) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.post(
    "/api/log", response_model=QueuedLog, responses=RESPONSES, openapi_extra=openapi(LogIn)
)
async def ingest_one(request: Request) -> Response:
    """Store one log; answered once it is durable."""
    writer = await admit(request, Scope.INGEST)
    services = await get_services(request)
    log = await parse_json(request, LogIn, limit=services.settings.max_body_bytes)
    writer.check_devices([log.device_id])
    (message_id,), received_at = await services.ingest.accept([log], locate=alone)
    note_accepted(request, 1)
    return json_answer(QueuedLog(message_id=message_id, received_at=received_at))


@router.post(
    "/api/logs/batch",
    response_model=QueuedBatch,
    responses=RESPONSES,
    openapi_extra=openapi(LogBatchIn),
)
async def ingest_batch(request: Request) -> Response:
    """Store 1..1000 logs, all or none; answered once they are durable."""
    writer = await admit(request, Scope.INGEST)
    services = await get_services(request)
    batch = await parse_json(request, LogBatchIn, limit=services.settings.max_body_bytes)
    writer.check_devices(log.device_id for log in batch.logs)
    message_ids, received_at = await services.ingest.accept(batch.logs)
    note_accepted(request, len(message_ids))
    return json_answer(
        QueuedBatch(count=len(message_ids), message_ids=message_ids, received_at=received_at)
    )
