"""OTLP/HTTP logs: `POST /v1/logs`, as the OpenTelemetry SDKs and Collector export them.

Every answer of this route is in the request's encoding (protobuf or JSON): 200 with an
ExportLogsServiceResponse, its `partial_success` counting the records refused and why; an
error as a google.rpc.Status with the HTTP status OTLP clients retry by (429 and 503 with
Retry-After; never a 4xx they would retry). Refusals made before the route runs (credential,
rate limit, body size) keep fleetlog's JSON error body: a client needs only their status and
Retry-After.
"""

from fastapi import APIRouter, Request, Response

from fleetlog.api.body import read_decoded
from fleetlog.api.deps import get_services
from fleetlog.api.errors import count_rejection
from fleetlog.api.middleware import note_accepted
from fleetlog.api.security import admit
from fleetlog.auth.principals import Scope
from fleetlog.errors import FleetlogError
from fleetlog.ingest import Shipment
from fleetlog.metrics import SHIPPED_RECORDS
from fleetlog.shippers.intake import Refusal
from fleetlog.shippers.otlp import Encoding, decode, export_response, status_body
from fleetlog.shippers.otlp_mapping import Mapped, map_request

router = APIRouter(tags=["shippers"])

# How many refusals the partial success names; the count covers them all.
NAMED_REFUSALS = 3


# Left out of the OpenAPI document: its bodies are protobuf or OTLP/JSON, which the OTLP
# specification and docs/protocols.md describe, not a JSON Schema.
@router.post("/v1/logs", include_in_schema=False)
async def export_logs(request: Request) -> Response:
    """Store the log records of an OTLP export; answered once those accepted are durable."""
    encoding = Encoding.JSON
    try:
        encoding = Encoding.of(request.headers.get("content-type", ""))
        principal = await admit(request, Scope.INGEST)
        services = await get_services(request)
        body = await read_decoded(request, limit=services.settings.max_body_bytes)
        mapped = map_request(decode(body, encoding))
        shipment = await services.ingest.ship(mapped.shipped, protocol="otlp", principal=principal)
        note_accepted(request, len(shipment.message_ids))
    except FleetlogError as exc:
        count_rejection(request.method, request.url.path, exc)
        return Response(
            status_body(exc, encoding),
            status_code=exc.status,
            headers=exc.headers,
            media_type=encoding.value,
        )
    SHIPPED_RECORDS.labels("otlp", "refused").inc(len(mapped.refusals))
    refusals = refused(mapped, shipment)
    message = summary(refusals, total=mapped.total)
    return Response(export_response(len(refusals), message, encoding), media_type=encoding.value)


def refused(mapped: Mapped, shipment: Shipment) -> list[Refusal]:
    """Every refused record, indexed among the request's records, in the request's order."""
    placed = [
        Refusal(mapped.indexes[refusal.index], refusal.rule, refusal.message, refusal.status)
        for refusal in shipment.refusals
    ]
    return sorted(mapped.refusals + placed, key=lambda refusal: refusal.index)


def summary(refusals: list[Refusal], *, total: int) -> str:
    """`partial_success.error_message`: how many records were refused, and the first reasons."""
    if not refusals:
        return ""
    named = "; ".join(
        f"log record {refusal.index} ({refusal.rule}): {refusal.message}"
        for refusal in refusals[:NAMED_REFUSALS]
    )
    more = len(refusals) - NAMED_REFUSALS
    rest = f"; and {more} more" if more > 0 else ""
    return f"{len(refusals)} of {total} log records were refused: {named}{rest}"
