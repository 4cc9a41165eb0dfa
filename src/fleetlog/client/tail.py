"""A live tail that outlives dropped connections: it resumes with `Last-Event-ID`."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fleetlog.client.api import ClientError, LogApi
from fleetlog.client.sse import SseEvent, SseParser

Notice = Callable[[str], None]
# The shortest wait, whatever the server's `retry:` asks: never a tight reconnection loop.
LEAST_WAIT = 0.1


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between reconnections: `first` s, doubling up to `most`; `attempts` in a row."""

    first: float = 0.5
    most: float = 10.0
    attempts: int = 8

    def delay(self, failures: int, *, asked_ms: int | None = None) -> float:
        base = self.first if asked_ms is None else max(asked_ms / 1000, LEAST_WAIT)
        return float(min(base * 2 ** (failures - 1), self.most))


class Tail:
    """The events of `GET /api/tail?q=…`, across as many connections as it takes.

    The first connection must succeed: its failure is the caller's error. Afterwards a lost
    connection, a 5xx or a 429 is retried after a backoff (`notice` says so), up to
    `backoff.attempts` failures in a row; any other refusal ends the tail.
    """

    def __init__(
        self, api: LogApi, q: str, *, notice: Notice, backoff: Backoff | None = None
    ) -> None:
        self.api = api
        self.q = q
        self.notice = notice
        self.backoff = backoff or Backoff()
        self.parser = SseParser()
        self.connected = False
        self.failures = 0

    def events(self) -> Iterator[SseEvent]:
        while True:
            try:
                yield from self._connection()
                reason = "the server ended the stream"
            except ClientError as exc:
                if not (self.connected and exc.retryable):
                    raise
                reason = exc.message
            self._wait_after(reason)

    def _connection(self) -> Iterator[SseEvent]:
        self.parser.restart()
        with self.api.tail(self.q, last_event_id=self.parser.last_event_id) as lines:
            self.connected = True
            for line in lines:
                # Only a connection that says something (a heartbeat will do) resets the backoff.
                self.failures = 0
                if (event := self.parser.feed(line)) is not None:
                    yield event

    def _wait_after(self, reason: str) -> None:
        self.failures += 1
        if self.failures > self.backoff.attempts:
            raise ClientError(f"{reason}; gave up after {self.backoff.attempts} reconnections")
        delay = self.backoff.delay(self.failures, asked_ms=self.parser.retry_ms)
        self.notice(f"{reason}; reconnecting in {delay:.1f} s")
        time.sleep(delay)
