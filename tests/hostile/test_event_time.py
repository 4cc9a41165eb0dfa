"""Wrong device clocks: a log the store would not keep is refused, never acknowledged.

Against a real `fleetlog serve` that keeps logs 7 days, told it may accept 30 days: the
retention wins, so the window is 7 days back and 10 minutes ahead of the receive time.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures.process import running_server
from tests.fixtures.records import make_batch, make_log

DAY = timedelta(days=1)
ENV = {"FLEETLOG_RETENTION_DAYS": "7", "FLEETLOG_MAX_EVENT_AGE": str(30 * 86400)}


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[httpx.Client]:
    with running_server(tmp_path_factory.mktemp("event-time") / "data", env=ENV) as server:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield client


def rules(answer: httpx.Response) -> set[tuple[str, str]]:
    return {(error["field"], error["rule"]) for error in answer.json()["detail"]}


def stored(http: httpx.Client, device_id: str) -> list[dict]:
    rows: list[dict] = http.get(f"/api/logs/{device_id}").json()["data"]
    return rows


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "timestamp",
    [
        "1970-01-01T00:00:00Z",
        0,
        -1,
        # 9999-12-31 in epoch seconds, which was read as milliseconds: 1978.
        pytest.param(253402300799, id="year-9999-in-seconds"),
        pytest.param("253402300799", id="year-9999-in-seconds-as-text"),
    ],
)
def test_a_log_the_clock_puts_outside_the_window_is_refused(http, timestamp):
    device_id = f"clock-{timestamp}"
    answer = http.post("/api/log", json=make_log(device_id=device_id, timestamp=timestamp))
    assert answer.status_code == 422, answer.text
    assert rules(answer) == {("timestamp", "event_time_window")}
    assert stored(http, device_id) == []


def test_the_retention_bounds_the_window(http):
    now = datetime.now(UTC)
    kept = http.post("/api/log", json=make_log(device_id="week", timestamp=iso(now - 6 * DAY)))
    assert kept.status_code == 200, kept.text
    late = http.post("/api/log", json=make_log(device_id="week", timestamp=iso(now - 8 * DAY)))
    assert late.status_code == 422
    assert [row["created_at"] for row in stored(http, "week")] == [iso(now - 6 * DAY)]


def test_ten_minutes_ahead_is_the_skew_allowed(http):
    now = datetime.now(UTC)
    ahead = make_log(device_id="ahead", timestamp=iso(now + timedelta(minutes=5)))
    assert http.post("/api/log", json=ahead).status_code == 200
    too_far = make_log(device_id="ahead", timestamp=iso(now + timedelta(minutes=15)))
    assert http.post("/api/log", json=too_far).status_code == 422


def test_epoch_seconds_and_milliseconds_both_land_on_the_same_time(http):
    when = datetime.now(UTC).replace(microsecond=250_000) - timedelta(hours=1)
    seconds = when.timestamp()
    for sent in (seconds, int(seconds * 1000), str(seconds)):
        answer = http.post("/api/log", json=make_log(device_id="epoch", timestamp=sent))
        assert answer.status_code == 200, answer.text
    assert [row["created_at"] for row in stored(http, "epoch")] == [iso(when)] * 3


def test_one_bad_clock_refuses_the_whole_batch_naming_each_log(http):
    batch = make_batch(5, device_id="batch")
    batch["logs"][1]["timestamp"] = iso(datetime.now(UTC) - 30 * DAY)
    batch["logs"][3]["timestamp"] = iso(datetime.now(UTC) + DAY)
    answer = http.post("/api/logs/batch", json=batch)
    assert answer.status_code == 422
    assert rules(answer) == {
        ("logs[1].timestamp", "event_time_window"),
        ("logs[3].timestamp", "event_time_window"),
    }
    assert stored(http, "batch") == []
