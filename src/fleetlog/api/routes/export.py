"""`GET /api/export`: every log a search finds, streamed as a file (docs/lifecycle.md)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from fleetlog.api.deps import QueryDep, SettingsDep
from fleetlog.api.routes.search import Q, Since, Until
from fleetlog.api.security import AUTH_RESPONSES, Reader
from fleetlog.export import MEDIA_TYPES, Export, ExportFormat, gzipped
from fleetlog.search.grammar import parse
from fleetlog.search.plan import Device, conjoin
from fleetlog.search.times import time_range
from fleetlog.store.logs import Selection

router = APIRouter(tags=["export"], responses=AUTH_RESPONSES)


FILE_TYPES = ("application/x-ndjson", "text/csv", "application/gzip")


@router.get(
    "/api/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The logs as a file: NDJSON, CSV, or either gzip'ed",
            "content": {media_type: {} for media_type in FILE_TYPES},
        }
    },
)
async def export_logs(
    query: QueryDep,
    settings: SettingsDep,
    reader: Reader,
    q: Q = None,
    since: Since = None,
    until: Until = None,
    format: Annotated[ExportFormat, Query(description="NDJSON lines or CSV rows")] = "ndjson",
    gzip: Annotated[bool, Query(description="A gzip file (`.gz`) instead of plain text")] = False,
) -> StreamingResponse:
    """The logs `q` finds within [since, until), oldest first, streamed page by page.

    `until` defaults to now plus the accepted clock skew: every log stored when the export
    started. Each page's read is bound by the query timeout on its own.
    """
    now = datetime.now(UTC)
    start, end = time_range(since, until, now=now)
    plan = parse(q)
    if reader.device_prefix is not None:
        plan = conjoin(plan, Device(reader.device_prefix, prefix=True))
    selection = Selection(
        plan,
        since=start,
        until=end or now + settings.max_event_skew,
        ascending=True,
        timeout=query.query_timeout,
    )
    export = Export(query.store, selection, fmt=format)
    await export.start()
    name = f"fleetlog-export-{now:%Y%m%dT%H%M%SZ}.{format}"
    body = export.chunks()
    media_type = MEDIA_TYPES[format]
    if gzip:
        body, media_type, name = gzipped(body), "application/gzip", f"{name}.gz"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
