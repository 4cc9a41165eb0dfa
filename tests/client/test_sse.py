"""The SSE line parser, case by case from the WHATWG event-stream rules."""

from fleetlog.client.sse import SseEvent, SseParser


def parse(text: str, parser: SseParser | None = None) -> list[SseEvent]:
    parser = parser or SseParser()
    events = (parser.feed(line) for line in text.splitlines())
    return [event for event in events if event is not None]


class TestSseParser:
    def test_a_log_event_with_its_id(self):
        assert parse('event: log\nid: 7\ndata: {"id": 7}\n\n') == [
            SseEvent(event="log", data='{"id": 7}', id="7")
        ]

    def test_data_lines_are_joined_by_newlines(self):
        assert parse("data: one\ndata:two\ndata:  three\n\n")[0].data == "one\ntwo\n three"

    def test_comments_are_heartbeats_not_events(self):
        assert parse(": ping\n\n: ping\n\nevent: dropped\ndata: {}\n\n") == [
            SseEvent(event="dropped", data="{}", id=None)
        ]

    def test_an_event_without_data_is_not_dispatched_and_the_type_resets(self):
        assert parse("event: log\n\ndata: x\n\n") == [SseEvent(event="message", data="x", id=None)]

    def test_an_empty_data_line_is_an_event_with_empty_data(self):
        assert parse("data\n\n") == [SseEvent(event="message", data="", id=None)]

    def test_the_last_id_carries_over_to_later_events_and_an_id_with_nul_is_ignored(self):
        parser = SseParser()
        events = parse("id: 3\ndata: a\n\ndata: b\n\nid: 4\0\ndata: c\n\n", parser)
        assert [event.id for event in events] == ["3", "3", "3"]
        assert parser.last_event_id == "3"

    def test_retry_is_kept_only_when_all_digits(self):
        parser = SseParser()
        parse("retry: 2500\n\nretry: 1s\n\n", parser)
        assert parser.retry_ms == 2500

    def test_unknown_fields_and_a_leading_bom_are_ignored(self):
        assert parse("\ufeffdata: x\nfoo: bar\n\n") == [
            SseEvent(event="message", data="x", id=None)
        ]

    def test_an_event_cut_off_by_a_lost_connection_is_dropped_with_its_id(self):
        parser = SseParser(last_event_id="9")
        assert parse("event: log\nid: 10\ndata: half", parser) == []
        assert parser.last_event_id == "9"
        parser.restart()
        assert parse("data: whole\n\n", parser) == [SseEvent(event="message", data="whole", id="9")]
