"""Server-Sent Events, read line by line as the WHATWG rules say (`text/event-stream`)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event: its type, its data (lines joined by newlines) and the last id."""

    event: str
    data: str
    id: str | None


class SseParser:
    """Feed it the stream's lines, without their line endings; it returns each finished event.

    `last_event_id` is the id of the last event dispatched, kept across events without one and
    across reconnections: it is what `Last-Event-ID` resumes from, so an event a lost connection
    cut off is sent again. `retry_ms` is the reconnection delay the server asked for, if any.
    """

    def __init__(self, *, last_event_id: str | None = None) -> None:
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self._id = last_event_id
        self._event = ""
        self._data: list[str] = []
        self._started = False

    def feed(self, line: str) -> SseEvent | None:
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._apply(field, value)
        return None

    def restart(self) -> None:
        """A new connection: an event cut off by the old one is dropped, with its id."""
        self._id = self.last_event_id
        self._event = ""
        self._data = []
        self._started = False

    def _apply(self, field: str, value: str) -> None:
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)

    def _dispatch(self) -> SseEvent | None:
        self.last_event_id = self._id
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return SseEvent(event=event, data="\n".join(data), id=self.last_event_id)
