"""GELF's chunked UDP messages put back together, in bounded memory.

A chunk is `0x1e 0x0f`, an 8-byte message id, its sequence number and the sequence count
(at most 128), then a piece of the payload. Chunks may arrive in any order and some never
do: a message not complete `timeout` seconds after its first chunk is given up, and so is
the oldest one when `max_messages` are being put together or their bytes pass `max_bytes`.
Each message given up is counted by the caller, through what `add` and `expire` return.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetlog.listeners.errors import InvalidLine

MAGIC = b"\x1e\x0f"
HEADER_BYTES = 12
MAX_CHUNKS = 128


@dataclass(slots=True)
class Partial:
    """The chunks of one message received so far."""

    count: int
    started: float
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembly:
    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_messages: int = 1024,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.clock = clock
        # Insertion order is arrival order of each message's first chunk: the oldest first.
        self.partials: dict[bytes, Partial] = {}
        self.size = 0

    def add(self, chunk: bytes) -> tuple[bytes | None, int]:
        """The whole payload once `chunk` completes its message (else None), and how many
        unfinished messages were given up to make room or for being too old."""
        if len(chunk) < HEADER_BYTES or not chunk.startswith(MAGIC):
            raise InvalidLine("a GELF chunk starts with 0x1e 0x0f and a 10-byte header")
        message_id, number, count = chunk[2:10], chunk[10], chunk[11]
        if not 0 < count <= MAX_CHUNKS or number >= count:
            raise InvalidLine(f"a GELF chunk is numbered 0..count-1 with 1..{MAX_CHUNKS} chunks")
        given_up = self.expire()
        partial = self.partials.get(message_id)
        if partial is None:
            partial = self.partials[message_id] = Partial(count, self.clock())
        elif partial.count != count:
            self.forget(message_id)
            raise InvalidLine("the chunks of a GELF message disagree on their count")
        piece = chunk[HEADER_BYTES:]
        if number not in partial.pieces:
            partial.pieces[number] = piece
            partial.size += len(piece)
            self.size += len(piece)
        if len(partial.pieces) == count:
            self.forget(message_id)
            return b"".join(partial.pieces[n] for n in range(count)), given_up
        return None, given_up + self.make_room()

    def expire(self) -> int:
        """Give up the messages older than the timeout; returns how many."""
        oldest = self.clock() - self.timeout
        expired = 0
        while self.partials:
            key = next(iter(self.partials))
            if self.partials[key].started > oldest:
                break
            self.forget(key)
            expired += 1
        return expired

    def make_room(self) -> int:
        given_up = 0
        while len(self.partials) > self.max_messages or self.size > self.max_bytes:
            self.forget(next(iter(self.partials)))
            given_up += 1
        return given_up

    def forget(self, message_id: bytes) -> None:
        self.size -= self.partials.pop(message_id).size
