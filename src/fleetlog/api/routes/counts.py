"""Counts over time and the fleet view (docs/counts.md)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from fleetlog.api.deps import CountsDep
from fleetlog.api.routes.search import Q, Since, Until
from fleetlog.api.security import AUTH_RESPONSES, Reader
from fleetlog.counts import CountAnswer, DeviceOrder, DevicesAnswer, Interval
from fleetlog.records import MAX_BATCH
from fleetlog.store.rollups import DeviceSort, GroupBy

router = APIRouter(tags=["counts"], responses=AUTH_RESPONSES)


@router.get("/api/logs/count", response_model=CountAnswer)
async def count_logs(
    counts: CountsDep,
    reader: Reader,
    q: Q = None,
    since: Since = None,
    until: Until = None,
    interval: Annotated[Interval, Query(description="The width of a bucket")] = "1h",
    group_by: Annotated[GroupBy | None, Query(description="One count per bucket and…")] = None,
) -> Response:
    """How many logs `q` finds per bucket of `interval` (empty buckets left out).

    `since` (default: 24 hours ago) and `until` (default: now) widen to whole buckets. Queries
    of devices and levels only are answered from per-minute rollups; others count the logs.
    """
    answer = await counts.count(
        q,
        since=since,
        until=until,
        interval=interval,
        group_by=group_by,
        device_prefix=reader.device_prefix,
    )
    return Response(answer.rendered(), media_type="application/json")


@router.get("/api/devices", response_model=DevicesAnswer, response_model_exclude_none=True)
async def list_devices(
    counts: CountsDep,
    reader: Reader,
    q: Annotated[
        str | None, Query(max_length=256, description="Devices only: `device:cam-*`")
    ] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="The window of the counts (default 24h)")
    ] = None,
    sort: Annotated[DeviceSort, Query(description="What the devices are sorted by")] = "device",
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH, description="How many devices")] = 100,
    cursor: Annotated[str | None, Query(max_length=512, description="A `next_cursor`")] = None,
) -> DevicesAnswer:
    """Every device with its first and last receive time and its counts by level in the
    window: which went silent (`sort=silent_for&order=desc`), which are noisy
    (`sort=errors&order=desc`)."""
    return await counts.devices(
        q,
        since=since,
        order=DeviceOrder(sort, descending=order == "desc"),
        limit=limit,
        cursor=cursor or None,
        device_prefix=reader.device_prefix,
    )
