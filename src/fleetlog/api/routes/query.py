"""The reference's query routes: a device's newest logs, and overall counts."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator

from fleetlog.api.deps import QueryDep
from fleetlog.api.security import AUTH_RESPONSES, require
from fleetlog.auth.principals import Scope
from fleetlog.records import MAX_BATCH, MAX_DEVICE_ID, LogsPage, Stats, reject_nul

router = APIRouter(
    tags=["query"], dependencies=[Depends(require(Scope.READ))], responses=AUTH_RESPONSES
)


# `path`: a device id may hold "/" (ingest accepts it), sent as %2F or as is.
@router.get("/api/logs/{device_id:path}", response_model=LogsPage)
async def device_logs(
    device_id: Annotated[
        str, Path(min_length=1, max_length=MAX_DEVICE_ID), AfterValidator(reject_nul)
    ],
    query: QueryDep,
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH, description="How many logs")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=256, description="A `next_cursor`: the page after it")
    ] = None,
) -> StreamingResponse:
    """The device's newest logs, newest first (by the device's own time when it sent one).

    A page ends at `limit` logs, or sooner to stay within the bound on an answer's bytes;
    `next_cursor` then leads to the rest.
    """
    page = await query.latest(device_id, limit=limit, cursor=cursor)
    return StreamingResponse(
        iterate(page.chunks()),
        media_type="application/json",
        headers={"content-length": str(page.answer_bytes())},
    )


async def iterate(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@router.get("/api/stats", response_model=Stats)
async def stats(query: QueryDep) -> Stats:
    """Total logs, logs by level, recently active devices; cached for `max_age_s` seconds."""
    return await query.stats()
