"""OTLP's and Loki's nanosecond times become datetimes cut to the microsecond, exactly."""

import random
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from fleetlog.shippers import loki, otlp_mapping

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# From 1970 to 2106 (2³² s), which holds every time the event window accepts for a century.
SPAN_NS = 2**32 * 10**9


def cut(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


def test_every_nanosecond_time_is_cut_to_its_microsecond() -> None:
    chosen = random.Random(5424)
    times = [chosen.randrange(SPAN_NS) for _ in range(20_000)]
    # Each side of a microsecond, and the span's ends.
    times += [1_700_000_000_123_456_000, 1_700_000_000_123_456_999, 1, SPAN_NS - 1]
    for ns in times:
        assert loki.event_time(ns) == cut(ns), ns
        assert otlp_mapping.event_time(LogRecord(time_unix_nano=ns)) == cut(ns), ns


def test_loki_refuses_what_no_calendar_holds() -> None:
    assert loki.event_time(400_000_000_000 * 10**9) is None
    assert loki.event_time(-(10**30)) is None
