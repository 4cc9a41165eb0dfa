"""The reference's ingest routes: one log, or a batch of 1..1000 logs."""

from fastapi import APIRouter, Request, Response

from fleetlog.api.body import parse_json
from fleetlog.api.deps import IngestDep, SettingsDep
from fleetlog.api.openapi import json_body
from fleetlog.api.security import AUTH_RESPONSES, Writer
from fleetlog.records import LogBatchIn, LogIn, QueuedBatch, QueuedLog

router = APIRouter(tags=["ingest"])

RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "The body is not valid JSON, or its encoding is broken"},
    413: {"description": "The body is over the size limit (before or after decompression)"},
    415: {"description": "Content-Type is not JSON, or Content-Encoding is not gzip/deflate"},
    422: {"description": "A field breaks its rule; `detail` names each field and rule"},
    503: {"description": "The backlog or the store cannot take logs now; retry after Retry-After"},
    **AUTH_RESPONSES,
}


def json_answer(model: QueuedLog | QueuedBatch) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.post(
    "/api/log", response_model=QueuedLog, responses=RESPONSES, openapi_extra=json_body(LogIn)
)
async def ingest_one(
    request: Request, ingest: IngestDep, settings: SettingsDep, writer: Writer
) -> Response:
    """Store one log; answered once it is durable."""
    log = await parse_json(request, LogIn, limit=settings.max_body_bytes)
    writer.check_devices([log.device_id])
    (message_id,), received_at = await ingest.accept([log])
    return json_answer(QueuedLog(message_id=message_id, received_at=received_at))


@router.post(
    "/api/logs/batch",
    response_model=QueuedBatch,
    responses=RESPONSES,
    openapi_extra=json_body(LogBatchIn),
)
async def ingest_batch(
    request: Request, ingest: IngestDep, settings: SettingsDep, writer: Writer
) -> Response:
    """Store 1..1000 logs, all or none; answered once they are durable."""
    batch = await parse_json(request, LogBatchIn, limit=settings.max_body_bytes)
    writer.check_devices(log.device_id for log in batch.logs)
    message_ids, received_at = await ingest.accept(batch.logs)
    return json_answer(
        QueuedBatch(count=len(message_ids), message_ids=message_ids, received_at=received_at)
    )
