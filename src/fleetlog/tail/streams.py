"""StreamSource: the pipeline's tail, reading every shard stream with plain XREAD.

XREAD reads beside the workers' consumer group and takes nothing from it. The worker deletes
an entry once it is stored, so the reader follows closely: XREAD BLOCK wakes at each XADD.
A log has no store id yet: its event id, and its `id`, is the message id the client got,
`<shard>-<entry id>-<position>`. A resume replays what the streams still hold after that
event (in the other shards, from the same millisecond on: a log of that millisecond may come
twice); what the worker stored meanwhile has left the streams and is not replayed.

One XREAD names every shard's stream: on a Redis Cluster, where the shards' hash tags spread
them over nodes, it would take one XREAD per node.
"""

import asyncio
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import translated
from fleetlog.records import UndecodableRecords, decode_records
from fleetlog.redis_client import Client, routed
from fleetlog.search.matcher import LogFields
from fleetlog.tail.events import Place, Position, TailEvent, unknown_event_id

log = logging.getLogger(__name__)

BLOCK_MS = 1000
# Entries per shard per read, each a request of up to 1,000 logs: the tails' window keeps the
# last read whole, so this bounds it too.
COUNT = 16
# A position past every log of an entry: the whole entry was read.
WHOLE = 2**31
EVENT_ID = re.compile(r"([0-9]{1,4})-([0-9]{1,20})-([0-9]{1,20})-([0-9]{1,4})")

Fields = dict[bytes, bytes]


def entry_place(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


def entry_events(shard: int, entry_id: bytes, fields: Fields) -> list[TailEvent]:
    """The logs of one stream entry; none for an entry the worker will dead-letter."""
    try:
        records = decode_records(fields.get(b"b", b""))
    except UndecodableRecords as exc:
        log.warning("the live tail skips entry %s of shard %d: %s", entry_id, shard, exc)
        return []
    ms, seq = entry_place(entry_id)
    prefix = f"{shard}-{entry_id.decode()}-"
    return [
        TailEvent(
            id=f"{prefix}{position}",
            lane=shard,
            place=(ms, seq, position),
            fields=LogFields(
                device_id=record.device_id,
                log_level=record.level,
                message=record.message,
                log_data=record.log_data,
            ),
            log_id=f"{prefix}{position}",
            created_at=record.ts,
            received_at=record.received_at,
        )
        for position, record in enumerate(records)
    ]


def entry_id(place: Place) -> str:
    return f"{place[0]}-{place[1]}"


class StreamSource:
    """New logs of the shard streams, read in one blocking XREAD over them all."""

    def __init__(
        self,
        client: Client,
        *,
        keys: Keys,
        shards: int,
        block_ms: int = BLOCK_MS,
        count: int = COUNT,
    ) -> None:
        self.client = client
        self.streams = [keys.stream(shard) for shard in range(shards)]
        self.shard_of = {stream.encode(): shard for shard, stream in enumerate(self.streams)}
        self.block_ms = block_ms
        self.count = count

    async def head(self) -> Position:
        with translated("tell where the streams end"):
            return tuple([await self._last_generated(stream) for stream in self.streams])

    async def _last_generated(self, stream: str) -> Place:
        try:
            info = await self.client.xinfo_stream(stream)
        except ResponseError:
            return (0, 0, WHOLE)  # no such stream yet: all it will hold is new
        return (*entry_place(info["last-generated-id"]), WHOLE)

    async def read(self, after: Position) -> tuple[list[TailEvent], Position]:
        last: Any = {
            stream: entry_id(place) for stream, place in zip(self.streams, after, strict=True)
        }
        with translated("read the streams"):
            reply: Any = await self._xread(last)
        events: list[TailEvent] = []
        position = list(after)
        for stream, entries in reply or ():
            shard = self.shard_of[stream]
            for found, fields in entries:
                events += entry_events(shard, found, fields)
                position[shard] = (*entry_place(found), WHOLE)
        return events, tuple(position)

    async def _xread(self, last: Any) -> Any:
        """One XREAD over every stream; on a cluster, whose streams live on several masters,
        one per stream at once, answered when the last one is: a quiet shard then holds the
        others' new logs back for up to `block_ms`."""
        if not isinstance(self.client, RedisCluster):
            return await self.client.xread(last, count=self.count, block=self.block_ms)
        reads = (
            self.client.execute_command(
                *("XREAD", "COUNT", self.count, "BLOCK", self.block_ms, "STREAMS", stream, after),
                **routed(self.client, stream),
            )
            for stream, after in last.items()
        )
        return [found for reply in await asyncio.gather(*reads) for found in reply or ()]

    async def replay(self, after: Position, until: Position) -> AsyncGenerator[TailEvent]:
        for shard, (start, end) in enumerate(zip(after, until, strict=True)):
            low = entry_id(start)  # inclusive: the rest of the entry the resume point is in
            while True:
                with translated("replay the streams"):
                    entries: Any = await self.client.xrange(
                        self.streams[shard], min=low, max=entry_id(end), count=self.count
                    )
                for found, fields in entries:
                    for event in entry_events(shard, found, fields):
                        if event.place > start:
                            yield event
                if len(entries) < self.count:
                    break
                low = f"({entries[-1][0].decode()}"

    def resume_point(self, event_id: str) -> Position:
        parsed = EVENT_ID.fullmatch(event_id)
        if parsed is None or int(parsed[1]) >= len(self.streams):
            raise unknown_event_id(event_id)
        shard, ms, seq, position = (int(part) for part in parsed.groups())
        others = (ms, 0, -1)
        return tuple(
            (ms, seq, position) if lane == shard else others for lane in range(len(self.streams))
        )
