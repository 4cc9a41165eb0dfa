"""The rules every shipper's record is held to, one by one, and Basic auth carrying a key."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import Headers

from fleetlog.api.security import presented_credential
from fleetlog.auth.principals import Principal, Scope
from fleetlog.event_time import EventWindow
from fleetlog.records import LogLevel
from fleetlog.shippers.intake import Rules, Shipped
from tests.fixtures.auth import add_key, secure_settings, serving
from tests.fixtures.pipeline import sample
from tests.fixtures.records import make_batch

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = EventWindow(max_age=timedelta(days=7), max_skew=timedelta(minutes=10))


def rules(**options) -> Rules:
    return Rules(WINDOW.at(NOW), protocol="test", max_line_bytes=1024, **options)


def shipped(**overrides) -> Shipped:
    fields = {
        "device_id": "pump-1",
        "level": LogLevel.ERROR,
        "message": "pressure low",
        "log_data": {"bar": 1.5},
        "ts": NOW - timedelta(minutes=1),
    }
    return Shipped(**{**fields, **overrides})


def test_records_that_pass_keep_their_fields_and_index():
    sorted_ = rules().sort([shipped(), shipped(device_id="", message="x"), shipped(ts=None)])
    assert sorted_.indexes == [0, 2]
    first, second = sorted_.records
    assert (first.device_id, first.level, first.message) == ("pump-1", "ERROR", "pressure low")
    assert first.log_data == {"bar": 1.5}
    assert first.ts == NOW - timedelta(minutes=1)
    assert first.received_at == NOW
    assert second.ts == NOW  # no event time: the time it was received


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"device_id": ""}, "device_id"),
        ({"device_id": "d" * 51}, "device_id"),
        ({"device_id": "pump\x00"}, "no_nul"),
        ({"message": "a\x00b"}, "no_nul"),
        ({"log_data": {"n": 2**64}}, "log_data.int64_range"),
        ({"log_data": {"k": {"k": {"k": {"k": {"k": {"k": {"k": {"k": {}}}}}}}}}}, None),
        ({"ts": NOW - timedelta(days=8)}, "event_time_window"),
        ({"ts": NOW + timedelta(minutes=11)}, "event_time_window"),
    ],
)
def test_a_record_breaking_a_rule_is_refused_with_the_rule_alone(overrides, rule):
    sorted_ = rules().sort([shipped(), shipped(**overrides), shipped()])
    if rule is None:  # 9 levels of nesting are within the 16 allowed
        assert sorted_.indexes == [0, 1, 2]
        return
    assert sorted_.indexes == [0, 2]
    [refusal] = sorted_.refusals
    assert (refusal.index, refusal.rule, refusal.status) == (1, rule, 400)
    assert refusal.message


def test_the_event_time_refusal_names_the_window():
    [refusal] = rules().sort([shipped(ts=NOW - timedelta(days=8))]).refusals
    assert "2026-11-23T12:00:00Z" in refusal.message
    assert "2026-11-30T12:10:00Z" in refusal.message


def test_a_key_bound_to_a_prefix_refuses_other_devices_with_403():
    principal = Principal(
        kind="key", id=7, name="pumps", grants=frozenset({Scope.INGEST}), device_prefix="pump-"
    )
    sorted_ = rules(principal=principal).sort([shipped(), shipped(device_id="valve-1")])
    assert sorted_.indexes == [0]
    [refusal] = sorted_.refusals
    assert (refusal.rule, refusal.status) == ("device_prefix", 403)


def test_a_long_line_is_cut_on_a_character_and_marked_not_refused():
    before = sample("fleetlog_lines_truncated_total", protocol="test")
    message = "é" * 600  # 1,200 bytes of UTF-8 against a 1,024-byte limit
    [record] = rules().sort([shipped(message=message)]).records
    kept, marker = record.message.split(" …", 1)
    assert kept == "é" * 512
    assert marker == "[truncated 176 bytes]"
    assert sample("fleetlog_lines_truncated_total", protocol="test") == before + 1


def test_a_line_within_the_limit_is_kept_whole():
    before = sample("fleetlog_lines_truncated_total", protocol="test")
    [record] = rules().sort([shipped(message="x" * 1024)]).records
    assert record.message == "x" * 1024
    assert sample("fleetlog_lines_truncated_total", protocol="test") == before


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "credential"),
    [
        (basic("promtail", "flk_secret"), "flk_secret"),
        (basic("", "flk_secret"), "flk_secret"),
        (basic("user", "pa:ss"), "pa:ss"),
        (basic("user", ""), None),
        ("Basic not-base64!", None),
        ("Basic " + base64.b64encode(b"no colon").decode(), None),
        ("Bearer flk_token", "flk_token"),
    ],
)
def test_basic_auth_presents_its_password_as_the_credential(authorization, credential):
    assert presented_credential(Headers({"authorization": authorization})) == credential


async def test_an_ingest_key_sent_as_a_basic_auth_password_is_admitted(tmp_path):
    settings = secure_settings(tmp_path, host="0.0.0.0")
    key = await add_key(settings, "shipper", Scope.INGEST)
    async with serving(settings) as http:
        batch = make_batch(2)
        answer = await http.post(
            "/api/logs/batch", json=batch, headers={"Authorization": basic("vector", key)}
        )
        assert answer.status_code == 200, answer.text
        wrong = await http.post(
            "/api/logs/batch", json=batch, headers={"Authorization": basic("vector", key + "x")}
        )
        assert wrong.status_code == 401
