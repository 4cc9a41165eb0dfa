"""Search: every log the query language finds, in pages (docs/query.md)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from fleetlog.api.deps import QueryDep
from fleetlog.api.routes.query import iterate
from fleetlog.api.security import AUTH_RESPONSES, Reader
from fleetlog.query import Search
from fleetlog.records import MAX_BATCH, FoundLogs
from fleetlog.search.grammar import MAX_QUERY

router = APIRouter(tags=["search"], responses=AUTH_RESPONSES)

Q = Annotated[
    str | None,
    Query(
        max_length=MAX_QUERY,
        description='The query language: `pump valve`, `"valve stuck"`, `press*`, `-word`, '
        "`a OR b`, `device:cam-*`, `level>=warning`, `attr.site:north`, `attr.temp_c>30`, "
        '`message~"pump \\d+"` (docs/query.md). Empty: every log.',
    ),
]
Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description="From this event time on: RFC 3339, epoch seconds or milliseconds, "
        "or a span before now (`15m`, `2h`, `7d`)",
    ),
]
Until = Annotated[str | None, Query(max_length=64, description="Before this event time")]


@router.get("/api/logs", response_model=FoundLogs)
async def search_logs(
    query: QueryDep,
    reader: Reader,
    q: Q = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH, description="How many logs")] = 100,
    order: Annotated[Literal["desc", "asc"], Query(description="By event time")] = "desc",
    cursor: Annotated[
        str | None, Query(max_length=256, description="A `next_cursor`: the page after it")
    ] = None,
) -> StreamingResponse:
    """The logs that match `q` within [since, until), newest first unless `order=asc`.

    A page ends at `limit` logs, or sooner to stay within the bound on an answer's bytes;
    `next_cursor` then leads to the rest, and logs that arrive meanwhile never shift it.
    """
    search = Search(q, since, until, ascending=order == "asc")
    page = await query.search(
        search, limit=limit, cursor=cursor or None, device_prefix=reader.device_prefix
    )
    return StreamingResponse(
        iterate(page.chunks()),
        media_type="application/json",
        headers={"content-length": str(page.answer_bytes())},
    )
