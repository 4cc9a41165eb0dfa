"""DeadLetters: list, show, replay and purge the entries the worker gave up on.

A dead letter is named `<shard>-<its id in the shard's dead-letter stream>`, e.g.
`2-1764540000000-0`. Replay moves it back onto its shard's stream in one script: XADD of the
original batch, INCRBY of the backlog, XDEL from the dead-letter stream. The worker then stores
it as any accepted entry, exactly once (the store's ledger, `store.bulk`); a second replay of
the same dead letter finds it gone and adds nothing. Its logs get the new entry's message ids.

The worker dead-letters only entries it did not store: refused or undecodable ones, and ones
delivered past the limit that the ledger does not hold (workers that each died between a commit
and its acknowledgement, that many times in a row, leave an entry the ledger holds: the next
delivery acknowledges it). A replay therefore never stores a log twice.
"""

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from fleetlog.errors import InvalidParameter, NotFound
from fleetlog.keys import Keys
from fleetlog.queue.console import text
from fleetlog.queue.redis_streams import translated
from fleetlog.records import LogRecord, UndecodableRecords, decode_records
from fleetlog.redis_client import Client

DEAD_ID = re.compile(r"(\d{1,4})-(\d{1,15})-(\d{1,15})")
PAGE = 100
MAX_PAYLOAD_SHOWN = 4096

# KEYS: stream, backlog, dead. ARGV: the dead letter's id. Returns the new entry's id, or
# false when the dead letter is gone (replayed or purged already).
REPLAY = """
local found = redis.call('XRANGE', KEYS[3], ARGV[1], ARGV[1])
if #found == 0 then
  return false
end
local fields = {}
for i = 1, #found[1][2], 2 do
  fields[found[1][2][i]] = found[1][2][i + 1]
end
local id = redis.call('XADD', KEYS[1], '*', 'n', fields['n'], 'b', fields['b'])
redis.call('INCRBY', KEYS[2], fields['n'])
redis.call('XDEL', KEYS[3], ARGV[1])
return id
"""

# KEYS: dead. Returns how many dead letters it held.
PURGE = """
local held = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return held
"""


class DeadLetterOut(BaseModel):
    id: str = Field(description="`<shard>-<id in the dead-letter stream>`")
    shard: int
    entry: str = Field(description="The entry's id in the shard's stream when it died")
    dead_at: datetime
    reason: str = Field(description="max_deliveries, rejected, undecodable")
    error: str
    deliveries: int
    logs: int


class DeadLetterShown(DeadLetterOut):
    records: list[dict[str, Any]] | None = Field(
        description="The batch's records, decoded; null when they cannot be"
    )
    payload: str | None = Field(
        description="The start of the raw payload, when it is not a batch of records"
    )


class DeadLettersOut(BaseModel):
    total: int = Field(description="Dead letters over every shard")
    entries: list[DeadLetterOut]


class ReplayedOut(BaseModel):
    replayed: dict[str, str] = Field(description="Each dead letter replayed, to its new entry")
    missing: list[str] = Field(description="Dead letters not found: replayed or purged already")


def invalid_id(field: str, rule: str, message: str) -> InvalidParameter:
    return InvalidParameter(
        f"{field}: {message}", detail=[{"field": field, "rule": rule, "message": message}]
    )


def number(value: bytes | None) -> int:
    return int(value) if value and value.isdigit() else 0


def record_of(record: LogRecord) -> dict[str, Any]:
    return {
        "device_id": record.device_id,
        "log_level": record.level,
        "message": record.message,
        "log_data": record.log_data,
        "ts": record.ts.isoformat(),
        "received_at": record.received_at.isoformat(),
    }


class DeadLetters:
    """The dead-letter streams of every shard.

    Args:
        client: a Redis client (bytes replies).
        keys: the key schema.
        shards: how many shard streams there are.
    """

    def __init__(self, client: Client, *, keys: Keys, shards: int) -> None:
        self.client = client
        self.keys = keys
        self.shards = shards
        self._replay = client.register_script(REPLAY)
        self._purge = client.register_script(PURGE)

    def parse_id(self, dead_id: str, *, field: str = "id") -> tuple[int, str]:
        """The shard and stream id of a dead letter's name; InvalidParameter naming `field`."""
        match = DEAD_ID.fullmatch(dead_id)
        if match is None:
            raise invalid_id(field, "dead_letter_id", "must be <shard>-<ms>-<seq>, as listed")
        shard = int(match[1])
        if shard >= self.shards:
            raise invalid_id(field, "shard", f"there is no shard {shard} of {self.shards}")
        return shard, f"{int(match[2])}-{int(match[3])}"

    async def oldest(self, *, limit: int) -> DeadLettersOut:
        """The oldest `limit` dead letters over every shard, and how many there are."""
        found: list[DeadLetterOut] = []
        total = 0
        with translated("list the dead letters"):
            for shard in range(self.shards):
                total += await self.client.xlen(self.keys.dead(shard))
                entries: Any = await self.client.xrange(self.keys.dead(shard), count=limit)
                found += [self._out(shard, entry_id, fields) for entry_id, fields in entries]
        found.sort(key=lambda letter: (letter.dead_at, letter.id))
        return DeadLettersOut(total=total, entries=found[:limit])

    async def show(self, dead_id: str) -> DeadLetterShown:
        shard, entry_id = self.parse_id(dead_id)
        with translated("read a dead letter"):
            found: Any = await self.client.xrange(self.keys.dead(shard), entry_id, entry_id)
        if not found:
            raise NotFound(f"no dead letter {dead_id}")
        fields = found[0][1]
        payload = fields.get(b"b", b"")
        try:
            records: list[dict[str, Any]] | None = [
                record_of(record) for record in decode_records(payload)
            ]
            raw = None
        except UndecodableRecords:
            records, raw = None, text(payload[:MAX_PAYLOAD_SHOWN])
        letter = self._out(shard, found[0][0], fields)
        return DeadLetterShown(**letter.model_dump(), records=records, payload=raw)

    async def replay(self, dead_ids: list[str]) -> ReplayedOut:
        """Put each dead letter back onto its shard's stream, once."""
        named = [self.parse_id(dead_id, field=f"ids[{i}]") for i, dead_id in enumerate(dead_ids)]
        answer = ReplayedOut(replayed={}, missing=[])
        for dead_id, (shard, entry_id) in zip(dead_ids, named, strict=True):
            keys = [self.keys.stream(shard), self.keys.backlog(shard), self.keys.dead(shard)]
            with translated("replay a dead letter"):
                new_id = await self._replay(keys=keys, args=[entry_id])
            if new_id:
                answer.replayed[dead_id] = f"{shard}-{text(new_id)}"
            else:
                answer.missing.append(dead_id)
        return answer

    async def replay_all(self) -> ReplayedOut:
        """Replay every dead letter there is now; those that die again meanwhile stay dead."""
        answer = ReplayedOut(replayed={}, missing=[])
        for shard in range(self.shards):
            dead = self.keys.dead(shard)
            with translated("list the dead letters"):
                last: Any = await self.client.xrevrange(dead, count=1)
            start: bytes = b"-"
            while last:
                with translated("list the dead letters"):
                    page: Any = await self.client.xrange(dead, start, last[0][0], count=PAGE)
                if not page:
                    break
                done = await self.replay([f"{shard}-{text(entry_id)}" for entry_id, _ in page])
                answer.replayed.update(done.replayed)
                answer.missing += done.missing
                start = b"(" + page[-1][0]
        return answer

    async def purge(self) -> int:
        """Drop every dead letter of every shard; returns how many there were."""
        purged = 0
        for shard in range(self.shards):
            with translated("purge the dead letters"):
                purged += int(await self._purge(keys=[self.keys.dead(shard)]))
        return purged

    def _out(self, shard: int, entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetterOut:
        return DeadLetterOut(
            id=f"{shard}-{text(entry_id)}",
            shard=shard,
            entry=text(fields.get(b"id", b"")),
            dead_at=datetime.fromtimestamp(int(entry_id.split(b"-")[0]) / 1000, UTC),
            reason=text(fields.get(b"reason", b"")) or "unknown",
            error=text(fields.get(b"error", b"")),
            deliveries=number(fields.get(b"deliveries")),
            logs=number(fields.get(b"n")),
        )
