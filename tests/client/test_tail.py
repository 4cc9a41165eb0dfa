"""The live tail across connections, against a real HTTP server speaking the tail contract."""

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice

import pytest

from fleetlog.client.api import ClientError, LogApi
from fleetlog.client.sse import SseEvent
from fleetlog.client.tail import Backoff, Tail
from tests.fixtures.search_server import SearchServer, TailScript, serving, sse_log, stored_log

QUICK = Backoff(first=0.01, most=0.05, attempts=3)


def sse(*ids: int) -> list[str]:
    return [sse_log(stored_log(n)) for n in ids]


def last_event_ids(server: SearchServer) -> list[str | None]:
    return [seen.headers.get("last-event-id") for seen in server.seen]


@contextmanager
def tail_of(server: SearchServer, notices: list[str]) -> Iterator[Iterator[SseEvent]]:
    """The tail's events, its connection closed when the block ends."""
    with LogApi(server.url) as api:
        events = Tail(api, "attr.site:north", notice=notices.append, backoff=QUICK).events()
        try:
            yield events
        finally:
            events.close()


def first(server: SearchServer, n: int, notices: list[str]) -> list[SseEvent]:
    with tail_of(server, notices) as events:
        return list(islice(events, n))


class TestTail:
    def test_resumes_after_the_last_id_when_the_stream_ends(self):
        server = SearchServer(
            tails=deque([TailScript(sse(1, 2, 3), then="end"), TailScript(sse(4))])
        )
        notices: list[str] = []
        with serving(server):
            events = first(server, 4, notices)
        assert [event.id for event in events] == ["1", "2", "3", "4"]
        assert last_event_ids(server) == [None, "3"]
        assert server.seen[0].params == {"q": "attr.site:north"}
        assert notices == ["the server ended the stream; reconnecting in 0.0 s"]

    def test_a_connection_dropped_mid_event_resends_that_event(self):
        cut = sse_log(stored_log(2))[:30]
        server = SearchServer(
            tails=deque([TailScript([*sse(1), cut], then="abort"), TailScript(sse(2, 3))])
        )
        notices: list[str] = []
        with serving(server):
            events = first(server, 3, notices)
        assert [event.id for event in events] == ["1", "2", "3"]
        assert last_event_ids(server) == [None, "1"]
        assert notices[0].startswith(f"the connection to {server.url} failed")

    def test_a_server_unavailable_for_a_while_is_retried_with_growing_waits(self):
        scripts = [TailScript(sse(1), then="end"), TailScript(status=503), TailScript(status=503)]
        server = SearchServer(tails=deque([*scripts, TailScript(sse(2))]))
        notices: list[str] = []
        with serving(server):
            events = first(server, 2, notices)
        assert [event.id for event in events] == ["1", "2"]
        assert last_event_ids(server) == [None, "1", "1", "1"]
        assert [notice.rsplit(" in ", 1)[1] for notice in notices] == ["0.0 s", "0.0 s", "0.0 s"]

    def test_gives_up_after_its_attempts_in_a_row(self):
        server = SearchServer(tails=deque([TailScript(sse(1), then="end")]))
        server.tails.extend(TailScript(status=503) for _ in range(5))
        notices: list[str] = []
        with serving(server):
            with tail_of(server, notices) as events, pytest.raises(ClientError, match="gave up"):
                list(events)
        assert len(notices) == 3

    def test_a_first_connection_refused_is_an_error_at_once(self):
        server = SearchServer(api_key="flk_read")
        with serving(server), tail_of(server, []) as events:
            with pytest.raises(ClientError, match=r"\(HTTP 401\)"):
                list(events)
        assert len(server.seen) == 1

    def test_the_wait_doubles_up_to_its_bound_or_starts_where_the_server_asked(self):
        backoff = Backoff(first=0.5, most=10.0)
        assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
        assert backoff.delay(2, asked_ms=3000) == 6.0
        assert backoff.delay(1, asked_ms=0) == 0.1
