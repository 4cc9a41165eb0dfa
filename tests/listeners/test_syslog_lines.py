"""Syslog lines (RFC 5424, RFC 3164) onto fleetlog's record, and TCP framing."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleetlog.listeners.errors import InvalidLine
from fleetlog.listeners.framing import Frame, Framer
from fleetlog.listeners.syslog import parse_syslog
from fleetlog.listeners.tcp import cut_message
from fleetlog.shippers.intake import TRUNCATED

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def parse(line: bytes, now: datetime = NOW):
    return parse_syslog(line, source="192.0.2.7", now=now)


class TestRfc5424:
    def test_every_field_finds_its_place(self):
        line = (
            b"<165>1 2026-11-30T11:59:58.123456+01:00 gw-12.example.com evntslog 4242 ID47 "
            b'[exampleSDID@32473 iut="3" eventSource="App\\"lication" eventID="1011"]'
            b'[timeQuality tzKnown="1"] \xef\xbb\xbfAn application event log entry'
        )
        record = parse(line)
        assert record.device_id == "gw-12.example.com"
        assert record.level == "INFO"
        assert record.message == "An application event log entry"
        assert record.ts == datetime(2026, 11, 30, 10, 59, 58, 123456, tzinfo=UTC)
        assert record.log_data == {
            "facility": "local4",
            "severity": "notice",
            "app_name": "evntslog",
            "procid": "4242",
            "msgid": "ID47",
            "structured_data": {
                "exampleSDID@32473": {"iut": "3", "eventSource": 'App"lication', "eventID": "1011"},
                "timeQuality": {"tzKnown": "1"},
            },
        }

    def test_nil_fields_are_left_out_and_the_source_names_the_device(self):
        record = parse(b"<11>1 - - - - - -")
        assert record.device_id == "192.0.2.7"
        assert record.ts is None
        assert record.message == ""
        assert record.log_data == {"facility": "user", "severity": "err"}

    @pytest.mark.parametrize(
        ("pri", "level"),
        [(0, "CRITICAL"), (1, "CRITICAL"), (2, "CRITICAL"), (3, "ERROR"), (4, "WARNING")]
        + [(5, "INFO"), (6, "INFO"), (7, "DEBUG"), (191, "DEBUG"), (184, "CRITICAL")],
    )
    def test_severity_becomes_the_level(self, pri, level):
        assert parse(b"<%d>1 - host app - - - x" % pri).level == level

    def test_a_parameter_given_twice_keeps_both_values_and_escapes_are_undone(self):
        record = parse(b'<14>1 - h a - - [x a="1" a="2\\]" b="c:\\\\d\\n"] m')
        assert record.log_data["structured_data"] == {"x": {"a": ["1", "2]"], "b": "c:\\d\\n"}}

    def test_a_message_may_hold_anything_after_the_structured_data(self):
        assert parse(b'<14>1 - h a - - [x a="1"] [not sd] "q"').message == '[not sd] "q"'

    @pytest.mark.parametrize(
        "line",
        [
            b'<14>1 - h a - - [x a="1" m',
            b'<14>1 - h a - - [x a="1"',
            b"<14>1 - h a - - [x a=1] m",
            b'<14>1 - h a - - [x a="1"]m',
            b'<14>1 - h a - - [ a="1"] m',
            b"<14>1 - h a - - x m",
            b"<14>1 - h a - -",
            b"<14>1 2026-11-30 12:00:00 h a - - - m",
            b"<14>1 2026-11-30T12:00:00 h a - - - m",
            b"<14>1 - " + b"h" * 256 + b" a - - - m",
        ],
        ids=[
            "value-not-closed",
            "element-not-closed",
            "value-not-quoted",
            "no-space-after-sd",
            "no-sd-id",
            "no-sd",
            "header-short",
            "time-with-space",
            "time-without-offset",
            "hostname-too-long",
        ],
    )
    def test_a_broken_line_is_invalid(self, line):
        with pytest.raises(InvalidLine):
            parse(line)


class TestRfc3164:
    def test_logger_line(self):
        record = parse(b"<13>Nov 30 11:59:58 kiosk-3 myapp[11880]: door opened\n")
        local = datetime(2026, 11, 30, 11, 59, 58).astimezone()
        assert record.device_id == "kiosk-3"
        assert (record.level, record.message) == ("INFO", "door opened")
        assert record.ts == local
        assert record.log_data == {
            "facility": "user",
            "severity": "notice",
            "app_name": "myapp",
            "procid": "11880",
        }

    def test_a_sender_that_leaves_out_its_hostname(self):
        record = parse(b"<12>Nov  3 11:59:58 myapp: low disk")
        assert (record.device_id, record.message) == ("192.0.2.7", "low disk")
        assert record.level == "WARNING"
        assert record.log_data["app_name"] == "myapp"

    def test_an_iso_time_as_rsyslog_forwards(self):
        record = parse(b"<30>2026-11-30T11:59:58.5Z cam-7 motion: armed")
        assert record.ts == datetime(2026, 11, 30, 11, 59, 58, 500000, tzinfo=UTC)
        assert (record.device_id, record.message) == ("cam-7", "armed")

    def test_without_a_time_everything_after_the_pri_is_the_message(self):
        record = parse(b"<13>just words")
        assert (record.device_id, record.message, record.ts) == ("192.0.2.7", "just words", None)

    @pytest.mark.parametrize(
        ("now", "year"),
        [
            (datetime(2027, 1, 1, 0, 5, tzinfo=UTC), 2026),
            (datetime(2026, 12, 31, 23, 55, tzinfo=UTC), 2027),
            (NOW, 2026),
        ],
    )
    def test_the_year_is_the_one_nearest_to_now(self, now, year):
        # Sent in the last minute of the year or the first one of the next.
        sent = b"Dec 31 23:59:00" if year != 2027 else b"Jan  1 00:01:00"
        record = parse(b"<13>" + sent + b" h a: m", now=now.astimezone())
        assert record.ts is not None
        assert record.ts.year == year

    def test_the_time_is_read_in_the_local_zone(self):
        record = parse(b"<13>Nov 30 11:59:58 h a: m")
        assert record.ts is not None
        assert record.ts.utcoffset() == datetime(2026, 11, 30, 11).astimezone().utcoffset()

    @pytest.mark.parametrize(
        "line",
        [b"garbage", b"", b"<>x", b"<1000>x", b"<192>x", b"13>x", b"<13>Feb 30 10:00:00 h a: m"],
    )
    def test_a_line_without_a_valid_pri_or_time_is_invalid(self, line):
        with pytest.raises(InvalidLine):
            parse(line)


class TestFraming:
    def test_lf_lines_across_reads(self):
        framer = Framer(max_frame=100)
        assert framer.feed(b"<13>one\n<13>tw") == [Frame(b"<13>one")]
        assert framer.feed(b"o\r\n<13>three") == [Frame(b"<13>two")]
        assert framer.end() == [Frame(b"<13>three")]

    def test_octet_counted_frames_across_reads(self):
        framer = Framer(max_frame=100)
        assert framer.feed(b"7 <13>one9 <13>t") == [Frame(b"<13>one")]
        assert framer.feed(b"wo\nx1") == [Frame(b"<13>two\nx")]
        assert framer.feed(b"0 <13>three!") == [Frame(b"<13>three!")]
        assert framer.broken is None

    def test_a_long_line_is_kept_to_the_bound_and_the_rest_counted(self):
        framer = Framer(max_frame=10)
        assert framer.feed(b"<13>456789abc") == []
        assert framer.feed(b"def\nnext\n") == [Frame(b"<13>456789", skipped=6), Frame(b"next")]

    @pytest.mark.parametrize("data", [b"11 " + b"x" * 11, b"1x2 abc", b"01 x", b"12345678901"])
    def test_a_frame_over_the_bound_or_without_a_count_breaks_the_stream(self, data):
        framer = Framer(max_frame=10)
        assert framer.feed(b"3 abc" + data) == [Frame(b"abc")]
        assert framer.broken is not None

    def test_a_cut_message_fits_the_line_bound_with_its_marker(self):
        cut = cut_message("é" * 1000, skipped=500, max_line_bytes=1024)
        assert len(cut.encode()) <= 1024
        kept = cut.split(" …")[0]
        assert cut.endswith(TRUNCATED.format(dropped=2000 - len(kept.encode()) + 500))


def test_offsets_are_kept_as_sent():
    record = parse(b"<13>1 2026-11-30T11:00:00-05:30 h a - - - m")
    assert record.ts == datetime(2026, 11, 30, 11, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
