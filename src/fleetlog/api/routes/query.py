"""The reference's query routes: a device's newest logs, and overall counts."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from starlette.convertors import Convertor, register_url_convertor

from fleetlog.api.deps import QueryDep
from fleetlog.api.security import AUTH_RESPONSES, Reader
from fleetlog.records import MAX_BATCH, MAX_DEVICE_ID, NUL_FREE, LogsPage, Stats


class DeviceIdConvertor(Convertor[str]):
    """The rest of the path, whatever it holds: a device id may hold "/" (as %2F or as is) and
    line breaks, which Starlette's `path` (`.*`) stops at."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("device_id", DeviceIdConvertor())

# Each route takes its `Reader`: a second dependency on read scope would admit (and count
# against the rate limit) every request twice.
router = APIRouter(tags=["query"], responses=AUTH_RESPONSES)


@router.get("/api/logs/{device_id:device_id}", response_model=LogsPage)
async def device_logs(
    device_id: Annotated[
        str,
        Path(min_length=1, max_length=MAX_DEVICE_ID),
        NUL_FREE,
    ],
    query: QueryDep,
    reader: Reader,
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH, description="How many logs")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=256, description="A `next_cursor`: the page after it")
    ] = None,
) -> StreamingResponse:
    """The device's newest logs, newest first (by the device's own time when it sent one).

    A page ends at `limit` logs, or sooner to stay within the bound on an answer's bytes;
    `next_cursor` then leads to the rest.
    """
    reader.check_device_read(device_id)
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
async def stats(query: QueryDep, reader: Reader) -> Stats:
    """Total logs, logs by level, recently active devices; cached for `max_age_s` seconds.
    Fleet-wide: a key bound to a device prefix counts its devices with /api/logs/count."""
    reader.check_fleet_read()
    return await query.stats()
