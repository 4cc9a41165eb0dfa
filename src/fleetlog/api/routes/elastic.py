"""Elasticsearch's bulk API and the handshake its clients make first (docs/protocols.md).

`POST /_bulk` and `POST /{index}/_bulk` answer 200 with a status per item once the accepted
records are durable; a body that is not a bulk request is a 400 in Elasticsearch's shape,
storing nothing. Every answer carries `X-Elastic-Product: Elasticsearch`, which
elasticsearch-py and Logstash require, and comes in the compatibility media type when the
client asked for one. The handshake routes need the ingest scope, as Elasticsearch asks its
clients for credentials there too. None is in OpenAPI: Elasticsearch documents its API, and
the grammar of an NDJSON bulk body has no JSON Schema form.
"""

import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from fleetlog.api.body import read_decoded
from fleetlog.api.deps import get_services
from fleetlog.api.middleware import note_accepted
from fleetlog.api.security import admit
from fleetlog.api.services import Services
from fleetlog.auth.principals import Principal, Scope
from fleetlog.config import Settings
from fleetlog.shippers.elastic import handshake
from fleetlog.shippers.elastic.bulk import BulkWrite
from fleetlog.shippers.elastic.items import CREATED, bulk_answer
from fleetlog.shippers.elastic.ndjson import MalformedBulk, parse_bulk

BULK_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/json",
        "application/vnd.elasticsearch+x-ndjson",
        "application/vnd.elasticsearch+json",
    }
)
COMPATIBLE = re.compile(r"application/vnd\.elasticsearch\+json\s*;\s*compatible-with\s*=\s*(\d+)")


def answer(request: Request, body: dict[str, Any], *, status: int = 200) -> Response:
    """JSON, or the compatibility media type a client of Elasticsearch 8+ asks for."""
    compatible = COMPATIBLE.search(request.headers.get("accept", ""))
    media_type = "application/json"
    if compatible is not None:
        media_type = f"application/vnd.elasticsearch+json;compatible-with={compatible[1]}"
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=media_type,
        headers=handshake.PRODUCT_HEADER,
    )


def error(request: Request, status: int, kind: str, reason: str) -> Response:
    cause = {"type": kind, "reason": reason}
    return answer(
        request, {"error": {"root_cause": [cause], **cause}, "status": status}, status=status
    )


router = APIRouter(include_in_schema=False)


# The shippers POST, elasticsearch-py PUTs; Elasticsearch takes both.
@router.post("/_bulk")
@router.put("/_bulk")
@router.post("/{index:path}/_bulk")
@router.put("/{index:path}/_bulk")
async def bulk(request: Request) -> Response:
    """Store the records of `index` and `create` actions; answered once they are durable."""
    started = time.monotonic()
    principal = await admit(request, Scope.INGEST)
    services = await get_services(request)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in BULK_TYPES:
        reason = f"Content-Type header [{media_type}] is not supported; send application/x-ndjson"
        return error(request, 415, "media_type_header_exception", reason)
    body = await read_decoded(request, limit=services.settings.max_body_bytes)
    try:
        actions = parse_bulk(body, index=request.path_params.get("index"))
    except MalformedBulk as exc:
        return error(request, 400, exc.kind, exc.reason)
    write = BulkWrite(
        actions, ingest=services.ingest, registry=services.idempotency, principal=principal
    )
    outcomes = await write.write()
    note_accepted(request, sum(outcome is CREATED for outcome in outcomes))
    took_ms = round((time.monotonic() - started) * 1000)
    return answer(request, bulk_answer(actions, write.ids, outcomes, took_ms=took_ms))


async def shipper(request: Request) -> Principal:
    """The handshake's credentials: any a shipper sends (Basic auth too), with the ingest scope."""
    return await admit(request, Scope.INGEST)


setup = APIRouter(dependencies=[Depends(shipper)])
READ = ["GET", "HEAD"]


def settings_of(request: Request) -> Settings:
    services: Services = request.app.state.services
    return services.settings


@setup.api_route("/_cluster/health", methods=READ)
async def cluster_health(request: Request) -> Response:
    return answer(request, handshake.cluster_health())


@setup.api_route("/_license", methods=READ)
async def license_(request: Request) -> Response:
    return answer(request, handshake.license_of(settings_of(request)))


@setup.api_route("/_xpack", methods=READ)
async def xpack(request: Request) -> Response:
    return answer(request, handshake.xpack(settings_of(request)))


@setup.api_route("/_nodes", methods=READ)
@setup.api_route("/_nodes/{selector:path}", methods=READ)
async def nodes(request: Request) -> Response:
    return answer(request, handshake.nodes(settings_of(request)))


# What Beats and Logstash look for and put when missing: (the name Elasticsearch gives it, the
# key of the list that GET without a name answers, if it answers with one).
RESOURCES = {
    "/_ilm/policy": ("policy", None),
    "/_index_template": ("index template", "index_templates"),
    "/_component_template": ("component template", "component_templates"),
    "/_template": ("index template", None),
    "/_ingest/pipeline": ("pipeline", None),
}


def kept(what: str, listed: str | None) -> tuple[Callable[..., Any], ...]:
    """The endpoints of one kind of setup resource: listed (none), looked for (missing), put."""

    async def list_all(request: Request) -> Response:
        return answer(request, {} if listed is None else {listed: []})

    async def look_for(request: Request, name: str) -> Response:
        return answer(request, handshake.missing(what, name), status=404)

    async def put(request: Request, name: str) -> Response:
        return answer(request, handshake.ACKNOWLEDGED)

    return list_all, look_for, put


for prefix, (what, listed) in RESOURCES.items():
    list_all, look_for, put = kept(what, listed)
    setup.add_api_route(prefix, list_all, methods=READ)
    setup.add_api_route(f"{prefix}/{{name}}", look_for, methods=READ)
    setup.add_api_route(f"{prefix}/{{name}}", put, methods=["PUT", "POST"])

router.include_router(setup)
