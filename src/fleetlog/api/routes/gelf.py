"""`POST /gelf`: one GELF message, as Graylog's GELF HTTP input takes it, answered 202.

The body may be gzip'ed or zlib'ed with or without a Content-Encoding saying so (GELF
clients compress as they do over UDP). A message fleetlog's rules refuse is a 400 naming the
rule (403 for a key bound to another device prefix).
"""

from fastapi import APIRouter, Request, Response

from fleetlog.api.body import read_decoded
from fleetlog.api.deps import get_services
from fleetlog.api.middleware import note_accepted
from fleetlog.api.routes.ingest import RESPONSES, SECURITY
from fleetlog.api.security import admit
from fleetlog.auth.principals import Scope
from fleetlog.errors import FleetlogError, Forbidden
from fleetlog.listeners.gelf import InvalidGelf, inflate, parse_gelf
from fleetlog.shippers.intake import Refusal

router = APIRouter(tags=["ingest"])

GELF_RESPONSES: dict[int | str, dict[str, str]] = {
    **RESPONSES,
    400: {"description": "Not a GELF message, or a rule of fleetlog's refuses it"},
    403: {"description": "The key may not write this device, or lacks the ingest scope"},
}
# What OpenAPI shows of a GELF message; `_`-prefixed additional fields may be added.
GELF_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["host", "short_message"],
                    "properties": {
                        "version": {"type": "string", "example": "1.1"},
                        "host": {"type": "string", "minLength": 1, "maxLength": 50},
                        "short_message": {"type": "string", "minLength": 1},
                        "full_message": {"type": "string"},
                        "timestamp": {"type": "number", "description": "epoch seconds"},
                        "level": {"type": "integer", "minimum": 0, "maximum": 7},
                    },
                    "additionalProperties": True,
                }
            }
        },
    },
    **SECURITY,
}

# The GELF field behind each of fleetlog's rules (log_data's come from additional fields).
RULE_FIELDS = {
    "device_id": "host",
    "device_prefix": "host",
    "no_nul": "host, short_message",
    "event_time_window": "timestamp",
    "log_data": "_additional fields",
}


def refused(refusal: Refusal) -> FleetlogError:
    field = RULE_FIELDS.get(refusal.rule.split(".", 1)[0], "body")
    if refusal.status == 403:
        return Forbidden(
            refusal.message,
            detail=[{"field": field, "rule": refusal.rule, "message": refusal.message}],
        )
    return InvalidGelf(field, refusal.rule, refusal.message)


@router.post(
    "/gelf",
    status_code=202,
    response_class=Response,
    responses=GELF_RESPONSES,
    openapi_extra=GELF_BODY,
)
async def ingest_gelf(request: Request) -> Response:
    """Store one GELF message; answered once it is durable."""
    principal = await admit(request, Scope.INGEST)
    services = await get_services(request)
    limit = services.settings.max_body_bytes
    message = parse_gelf(inflate(await read_decoded(request, limit=limit), limit=limit))
    shipment = await services.ingest.ship([message], protocol="gelf", principal=principal)
    note_accepted(request, len(shipment.message_ids))
    if shipment.refusals:
        raise refused(shipment.refusals[0])
    return Response(status_code=202)
