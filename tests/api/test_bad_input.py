"""Every kind of bad input gets a 4xx naming the field and the rule, and stores nothing."""

import gzip
import json
import sys
import zlib

import pytest

from tests.fixtures.records import make_batch, make_log

JSON = {"Content-Type": "application/json"}


async def assert_nothing_stored(client):
    assert (await client.get("/api/stats")).json()["total_logs"] == 0


def rules(answer):
    return {(error["field"], error["rule"]) for error in answer.json()["detail"]}


class TestFieldRules:
    @pytest.mark.parametrize(
        ("override", "field", "rule"),
        [
            ({"log_level": "LOUD"}, "log_level", "enum"),
            ({"log_level": 3}, "log_level", "enum"),
            ({"device_id": ""}, "device_id", "string_too_short"),
            ({"device_id": "d" * 51}, "device_id", "string_too_long"),
            ({"device_id": "dev\x00ice"}, "device_id", "no_nul"),
            ({"device_id": ...}, "device_id", "missing"),
            ({"message": ""}, "message", "string_too_short"),
            ({"message": "m" * 5001}, "message", "string_too_long"),
            ({"message": "a\x00b"}, "message", "no_nul"),
            ({"message": ["not", "text"]}, "message", "string_type"),
            ({"log_data": [1, 2]}, "log_data", "dict_type"),
            ({"log_data": "text"}, "log_data", "dict_type"),
            ({"log_data": {"k": "v\x00"}}, "log_data", "no_nul"),
            ({"log_data": {"k\x00": 1}}, "log_data", "no_nul"),
            ({"timestamp": "yesterday"}, "timestamp", "event_time_format"),
            ({"timestamp": True}, "timestamp", "event_time_format"),
            ({"timestamp": "NaN"}, "timestamp", "event_time_format"),
            ({"timestamp": [1]}, "timestamp", "event_time_format"),
            ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", "datetime_range"),
            ({"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp", "datetime_range"),
            ({"timestamp": "1970-01-01T00:00:00Z"}, "timestamp", "event_time_window"),
            ({"timestamp": 253402300799}, "timestamp", "event_time_window"),
            ({"timestamp": 1e300}, "timestamp", "event_time_window"),
        ],
    )
    async def test_single_log(self, client, override, field, rule):
        answer = await client.post("/api/log", json=make_log(**override))
        assert answer.status_code == 422
        assert answer.json()["error"] == "validation_error"
        assert (field, rule) in rules(answer)
        await assert_nothing_stored(client)

    async def test_edges_are_accepted(self, client):
        log = make_log(device_id="d" * 50, message="m" * 5000)
        assert (await client.post("/api/log", json=log)).status_code == 200

    async def test_deep_log_data(self, client):
        nested: dict = {}
        node = nested
        for _ in range(20):
            node["k"] = {}
            node = node["k"]
        answer = await client.post("/api/log", json=make_log(log_data=nested))
        assert answer.status_code == 422
        assert ("log_data", "max_depth") in rules(answer)

    async def test_numbers_no_store_can_hold(self, client):
        answer = await client.post("/api/log", json=make_log(log_data={"n": [2**64]}))
        assert ("log_data", "int64_range") in rules(answer)
        for literal in (b"1e400", b"NaN", b"-Infinity"):
            body = b'{"device_id": "d", "log_level": "INFO", "message": "m", "log_data": {"x": '
            answer = await client.post("/api/log", content=body + literal + b"}}", headers=JSON)
            assert answer.status_code in (400, 422), literal
        await assert_nothing_stored(client)

    @pytest.mark.parametrize("digits", [b"1" + b"0" * 21, b"9" * 5000, b"-" + b"9" * 100_000])
    async def test_integers_of_any_length_past_64_bits_get_the_same_answer(self, client, digits):
        body = b'{"device_id": "d", "log_level": "INFO", "message": "m", "log_data": {"x": '
        answer = await client.post("/api/log", content=body + digits + b"}}", headers=JSON)
        assert answer.status_code == 422
        assert answer.json()["error"] == "validation_error"
        assert {rule for _, rule in rules(answer)} == {"int64_range"}
        await assert_nothing_stored(client)

    async def test_too_many_log_data_keys(self, client):
        log_data = {f"k{i}": i for i in range(1001)}
        answer = await client.post("/api/log", json=make_log(log_data=log_data))
        assert ("log_data", "max_keys") in rules(answer)


class TestBatchRules:
    async def test_one_bad_log_rejects_the_whole_batch_by_index(self, client):
        batch = make_batch(5)
        batch["logs"][3]["log_level"] = "LOUD"
        answer = await client.post("/api/logs/batch", json=batch)
        assert answer.status_code == 422
        assert rules(answer) == {("logs[3].log_level", "enum")}
        assert answer.json()["detail"][0]["loc"] == ["body", "logs", 3, "log_level"]
        await assert_nothing_stored(client)

    async def test_event_times_outside_the_window_are_named_by_index(self, client):
        batch = make_batch(5)
        batch["logs"][2]["timestamp"] = 0
        batch["logs"][4]["timestamp"] = "2999-01-01T00:00:00Z"
        answer = await client.post("/api/logs/batch", json=batch)
        assert answer.status_code == 422
        assert rules(answer) == {
            ("logs[2].timestamp", "event_time_window"),
            ("logs[4].timestamp", "event_time_window"),
        }
        first = answer.json()["detail"][0]
        assert first["loc"] == ["body", "logs", 2, "timestamp"]
        assert first["earliest"] < first["latest"]
        await assert_nothing_stored(client)

    @pytest.mark.parametrize(
        ("body", "field", "rule"),
        [
            ({"logs": []}, "logs", "too_short"),
            (make_batch(1001), "logs", "too_long"),
            ({"logs": "many"}, "logs", "list_type"),
            ({}, "logs", "missing"),
        ],
    )
    async def test_batch_shape(self, client, body, field, rule):
        answer = await client.post("/api/logs/batch", json=body)
        assert answer.status_code == 422
        assert (field, rule) in rules(answer)
        await assert_nothing_stored(client)


class TestBody:
    @pytest.mark.parametrize("body", [b"{bad", b"", b"\xff\xfe", b'{"logs": [}'])
    async def test_malformed_json_is_400(self, client, body):
        answer = await client.post("/api/logs/batch", content=body, headers=JSON)
        assert answer.status_code == 400
        assert answer.json()["error"] == "malformed_body"
        assert ("body", "json_invalid") in rules(answer)

    @pytest.mark.parametrize("path", ["/api/keys", "/api/users", "/api/users/alice/password"])
    @pytest.mark.parametrize("body", [b"{bad", b'{"name": "x",}', b"\xff\xfe"])
    async def test_malformed_json_is_400_on_every_route(self, client, path, body):
        method = "PUT" if path.endswith("password") else "POST"
        answer = await client.request(method, path, content=body, headers=JSON)
        assert answer.status_code == 400
        assert answer.json()["error"] == "malformed_body"
        assert ("body", "json_invalid") in rules(answer)

    async def test_an_integer_too_long_to_parse_on_an_admin_route_is_out_of_range(self, client):
        huge = b'{"name": "k", "scope": "ingest", "burst": ' + b"9" * 5000 + b"}"
        answer = await client.post("/api/keys", content=huge, headers=JSON)
        assert answer.status_code == 422
        assert rules(answer) == {("body", "int64_range")}
        assert "of over 4300 digits" in answer.json()["detail"][0]["message"]

    async def test_the_digit_limit_named_is_the_one_in_force(self, client):
        body = b'{"name": "k", "scope": "ingest", "burst": ' + b"9" * 2000 + b"}"
        default = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(1000)
        try:
            answer = await client.post("/api/keys", content=body, headers=JSON)
        finally:
            sys.set_int_max_str_digits(default)
        assert rules(answer) == {("body", "int64_range")}
        assert "of over 1000 digits" in answer.json()["detail"][0]["message"]

    async def test_a_body_not_in_utf8_on_an_admin_route_is_invalid_json(self, client):
        answer = await client.post("/api/keys", content=b'{"name": "\xff"}', headers=JSON)
        assert answer.status_code == 400
        assert rules(answer) == {("body", "json_invalid")}

    async def test_json_nested_too_deeply_on_an_admin_route_is_invalid_json(self, client):
        deep = b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        answer = await client.post("/api/keys", content=deep, headers=JSON)
        assert answer.status_code == 400
        assert answer.json()["error"] == "malformed_body"
        assert rules(answer) == {("body", "json_invalid")}
        deep_log = b'{"logs": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        assert rules(await client.post("/api/logs/batch", content=deep_log, headers=JSON)) == {
            ("body", "json_invalid")
        }

    @pytest.mark.parametrize("body", [b"[]", b"42", b'"text"', b"null"])
    async def test_json_that_is_not_an_object_is_422(self, client, body):
        answer = await client.post("/api/log", content=body, headers=JSON)
        assert answer.status_code == 422
        assert ("body", "model_type") in rules(answer)

    async def test_wrong_content_type_is_415(self, client):
        body = json.dumps(make_log())
        answer = await client.post("/api/log", content=body, headers={"Content-Type": "text/plain"})
        assert answer.status_code == 415
        assert rules(answer) == {("Content-Type", "one_of")}
        await assert_nothing_stored(client)

    async def test_unknown_content_encoding_is_415(self, client):
        headers = {**JSON, "Content-Encoding": "br"}
        answer = await client.post("/api/log", content=b"...", headers=headers)
        assert answer.status_code == 415
        assert rules(answer) == {("Content-Encoding", "one_of")}

    async def test_broken_gzip_is_400(self, client):
        headers = {**JSON, "Content-Encoding": "gzip"}
        answer = await client.post("/api/log", content=b"not gzip at all", headers=headers)
        assert answer.status_code == 400

    async def test_truncated_gzip_is_400(self, client):
        body = gzip.compress(json.dumps(make_log()).encode())[:-12]
        headers = {**JSON, "Content-Encoding": "gzip"}
        answer = await client.post("/api/log", content=body, headers=headers)
        assert answer.status_code == 400

    async def test_data_after_the_gzip_stream_is_400(self, client):
        body = gzip.compress(json.dumps(make_log()).encode()) + b"trailing"
        headers = {**JSON, "Content-Encoding": "gzip"}
        answer = await client.post("/api/log", content=body, headers=headers)
        assert answer.status_code == 400
        await assert_nothing_stored(client)

    async def test_deflate_is_accepted(self, client):
        body = zlib.compress(json.dumps(make_log()).encode())
        headers = {**JSON, "Content-Encoding": "deflate"}
        assert (await client.post("/api/log", content=body, headers=headers)).status_code == 200


class TestSizeLimits:
    async def test_body_over_the_cap_is_413_before_parsing(self, client, settings):
        body = b" " * (settings.max_body_bytes + 1)
        answer = await client.post("/api/logs/batch", content=body, headers=JSON)
        assert answer.status_code == 413
        assert rules(answer) == {("body", "max_bytes")}

    async def test_streamed_body_without_length_is_capped_while_read(self, client, settings):
        async def chunks():
            for _ in range(settings.max_body_bytes // 65536 + 2):
                yield b" " * 65536

        answer = await client.post("/api/logs/batch", content=chunks(), headers=JSON)
        assert answer.status_code == 413

    async def test_gzip_bomb_is_413(self, client, settings):
        bomb = gzip.compress(b" " * (settings.max_body_bytes * 4))
        assert len(bomb) < settings.max_body_bytes
        headers = {**JSON, "Content-Encoding": "gzip"}
        answer = await client.post("/api/logs/batch", content=bomb, headers=headers)
        assert answer.status_code == 413
        await assert_nothing_stored(client)


class TestQueryParameters:
    @pytest.mark.parametrize(
        ("limit", "rule"),
        [("0", "greater_than_equal"), ("1001", "less_than_equal"), ("ten", "int_parsing")],
    )
    async def test_limit_out_of_range(self, client, limit, rule):
        answer = await client.get("/api/logs/d1", params={"limit": limit})
        assert answer.status_code == 422
        assert rules(answer) == {("limit", rule)}

    async def test_device_id_with_nul(self, client):
        answer = await client.get("/api/logs/a%00b")
        assert answer.status_code == 422
        assert rules(answer) == {("device_id", "no_nul")}

    async def test_device_id_too_long(self, client):
        answer = await client.get("/api/logs/" + "d" * 51)
        assert answer.status_code == 422
        assert rules(answer) == {("device_id", "string_too_long")}


class TestUnknownRoutes:
    async def test_unknown_path_is_404_json(self, client):
        answer = await client.get("/api/nothing")
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"

    async def test_wrong_method_is_405_json(self, client):
        answer = await client.get("/api/log")
        assert answer.status_code == 405
        assert answer.json()["error"] == "method_not_allowed"
