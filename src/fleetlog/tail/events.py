"""What a tail reads and hands out: logs with their place in the source, and the source."""

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from fleetlog.errors import InvalidParameter
from fleetlog.search.matcher import LogFields

# Where a log sits in its lane (the SQLite id; a stream's entry id and the position in it):
# places compare as tuples, in the order the lane was written.
Place = tuple[int, ...]
# How far a source was read: the last place of each lane (one lane embedded, one per shard).
Position = tuple[Place, ...]


class TailEvent:
    """One log: its event id, its lane and place, the fields a plan looks at, and its times.

    Its JSON (`data`) is made when first asked for: only logs some tail wants are rendered.
    """

    __slots__ = ("_data", "created_at", "fields", "id", "lane", "log_id", "place", "received_at")

    def __init__(
        self,
        *,
        id: str,
        lane: int,
        place: Place,
        fields: LogFields,
        log_id: int | str,
        created_at: datetime,
        received_at: datetime,
    ) -> None:
        self.id = id
        self.lane = lane
        self.place = place
        self.fields = fields
        self.log_id = log_id
        self.created_at = created_at
        self.received_at = received_at
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        """The log as the reference shapes it, with `received_at`."""
        if self._data is None:
            fields = self.fields
            log = {
                "id": self.log_id,
                "device_id": fields.device_id,
                "log_level": fields.log_level,
                "message": fields.message,
                "log_data": fields.log_data,
                "created_at": self.created_at,
                "received_at": self.received_at,
            }
            self._data = orjson.dumps(log, option=orjson.OPT_UTC_Z)
        return self._data


@dataclass(frozen=True, slots=True)
class Dropped:
    """`count` logs were skipped here: logs the query matched that went out of the window
    before the client took them, or (a resume from long ago) logs never looked at."""

    count: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Nothing to send for a while: a comment keeps proxies from closing the connection."""


TailItem = TailEvent | Dropped | Heartbeat


class Source(Protocol):
    """Where new logs come from, in order, lane by lane."""

    async def head(self) -> Position:
        """How far the source is written now: reading from here gives only new logs."""

    async def read(self, after: Position) -> tuple[list[TailEvent], Position]:
        """The logs after `after` and the position past them; waits a short while (the poll
        interval, the XREAD block) when there are none yet."""

    def replay(self, after: Position, until: Position) -> AsyncGenerator[TailEvent | Dropped]:
        """The logs after `after` up to `until`, a page at a time (a resume's catch-up)."""

    def resume_point(self, event_id: str) -> Position:
        """The position just after the event `event_id` names; a 400 for an id it never gave."""


def unknown_event_id(event_id: str) -> InvalidParameter:
    """The 400 of a `Last-Event-ID` this tail never sent."""
    problem = {
        "field": "last_event_id",
        "rule": "event_id",
        "message": "must be the id of an event a tail of this fleetlog sent",
    }
    return InvalidParameter(f"not a tail event id: {event_id[:64]!r}", detail=[problem])
