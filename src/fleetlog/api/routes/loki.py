"""Loki push, `POST /loki/api/v1/push`: what Promtail, Alloy, Vector, Fluent Bit and
python-logging-loki send to Loki, taken unchanged (docs/protocols.md).

Like the reference's ingest routes it takes only the request. Success is a 204 with no body,
the one answer Loki's clients take as success.
"""

from fastapi import APIRouter, Request, Response

from fleetlog.api.body import read_decoded
from fleetlog.api.deps import get_services
from fleetlog.api.errors import documented
from fleetlog.api.middleware import note_accepted
from fleetlog.api.openapi import json_body
from fleetlog.api.security import AUTH_RESPONSES, admit
from fleetlog.auth.principals import Scope
from fleetlog.shippers.loki import PROTOBUF, decode_push, map_streams, raise_refusals
from fleetlog.shippers.loki_wire import LokiPush

router = APIRouter(tags=["shippers"])

RESPONSES: dict[int | str, dict[str, object]] = {
    204: {"description": "Every entry is stored (durable)"},
    **documented(
        {
            400: "The body is not a Loki push (nothing stored), or some entries broke a rule: "
            "`detail` lists each by stream and entry index with its rule; the others are stored",
            403: "Every refused entry is of a device the key may not write",
            413: "The body is over the size limit (before or after decompression)",
            415: "Content-Type is not JSON or protobuf, or Content-Encoding is not gzip/deflate",
            503: "The backlog or the store cannot take logs now; retry after Retry-After",
        }
    ),
    **AUTH_RESPONSES,
}


def openapi() -> dict[str, object]:
    """The JSON body's schema, and the protobuf one's (a snappy block of a PushRequest)."""
    declared = json_body(LokiPush)
    declared["requestBody"]["content"][PROTOBUF] = {
        "schema": {"type": "string", "format": "binary"}
    }
    return {**declared, "security": [{"bearer": []}, {"apiKey": []}]}


@router.post(
    "/loki/api/v1/push",
    status_code=204,
    response_class=Response,
    responses=RESPONSES,
    openapi_extra=openapi(),
)
async def loki_push(request: Request) -> Response:
    """Store the entries of a Loki push; answered once they are durable."""
    principal = await admit(request, Scope.INGEST)
    services = await get_services(request)
    settings = services.settings
    body = await read_decoded(request, limit=settings.max_body_bytes)
    content_type = request.headers.get("content-type", "")
    streams = decode_push(body, content_type=content_type, limit=settings.max_body_bytes)
    mapped = map_streams(
        streams,
        device_labels=settings.loki_device_labels,
        org_id=request.headers.get("x-scope-orgid", "").strip(),
    )
    shipment = await services.ingest.ship(mapped.shipped, protocol="loki", principal=principal)
    note_accepted(request, len(shipment.message_ids))
    raise_refusals(mapped, shipment)
    return Response(status_code=204)
