"""TCP syslog framing (RFC 6587), chosen per connection by its first byte.

A digit starts octet counting (`MSG-LEN SP MSG`, rsyslog's `TCP_Framing="octet-counted"`,
`logger --octet-count`); anything else is a line ended by LF (the traditional framing).
Memory stays bounded either way: a line is kept up to `max_frame` bytes and the rest of it
skipped to its LF (and counted); an octet count over `max_frame` (or no count at all) is not
waited for: it breaks the stream (`broken` says why), since nothing after it could be
trusted to be framed.
"""

from dataclasses import dataclass

MAX_COUNT_DIGITS = 10


@dataclass(frozen=True, slots=True)
class Frame:
    """One message's bytes; `skipped` counts the bytes of its line cut off past `max_frame`."""

    data: bytes
    skipped: int = 0


class Framer:
    """Splits one connection's bytes into frames, fed as they arrive."""

    def __init__(self, *, max_frame: int) -> None:
        self.max_frame = max_frame
        self.buffer = bytearray()
        self.octet_counted: bool | None = None
        self.skipping = 0
        # Why the stream can be framed no further; the connection is then to be closed.
        self.broken: str | None = None

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        if self.octet_counted is None and self.buffer:
            self.octet_counted = self.buffer[:1].isdigit()
        if self.octet_counted:
            return self.counted_frames()
        return self.lines()

    def counted_frames(self) -> list[Frame]:
        frames = []
        while self.buffer and self.broken is None:
            space = self.buffer.find(b" ", 0, MAX_COUNT_DIGITS + 1)
            count = bytes(self.buffer[: len(self.buffer) if space == -1 else space])
            if not count.isdigit() or count.startswith(b"0") or len(count) > MAX_COUNT_DIGITS:
                self.broken = "an octet-counted frame does not start with its length"
            elif int(count) > self.max_frame:
                self.broken = f"an octet-counted frame is over {self.max_frame} bytes"
            if space == -1 or self.broken is not None:
                break
            end = space + 1 + int(count)
            if len(self.buffer) < end:
                break
            frames.append(Frame(bytes(self.buffer[space + 1 : end])))
            del self.buffer[:end]
        return frames

    def lines(self) -> list[Frame]:
        frames = []
        start = 0
        while (end := self.buffer.find(b"\n", start)) != -1:
            frames.append(self.line(start, end))
            start = end + 1
        del self.buffer[:start]
        if len(self.buffer) > self.max_frame:
            self.skipping += len(self.buffer) - self.max_frame
            del self.buffer[self.max_frame :]
        return frames

    def line(self, start: int, end: int) -> Frame:
        """The line from `start` to `end`, cut at `max_frame` (what was cut counted)."""
        skipped = self.skipping + max(0, end - start - self.max_frame)
        self.skipping = 0
        data = bytes(self.buffer[start : min(end, start + self.max_frame)])
        return Frame(data.rstrip(b"\r"), skipped)

    def end(self) -> list[Frame]:
        """The last line of a connection closed without its LF."""
        if self.octet_counted or not self.buffer:
            return []
        return [self.line(0, len(self.buffer))]
