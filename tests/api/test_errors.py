"""The error answers of the API: a bare 400 of FastAPI told by its exact cause."""

import json
from typing import Any

import orjson
import pytest
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from fleetlog.api.errors import PARSE_FAILED, on_http_error


def refusal_of(body: bytes) -> Exception:
    """What json.loads raises for `body`, as FastAPI reads a body for a route with a model."""
    try:
        json.loads(body)
    except Exception as exc:
        return exc
    raise AssertionError("json.loads read the body")


async def answer_to(cause: BaseException) -> tuple[int, Any]:
    scope = {"type": "http", "method": "POST", "path": "/api/keys", "headers": []}
    exc = HTTPException(400, PARSE_FAILED)
    exc.__cause__ = cause
    answer = await on_http_error(Request(scope), exc)
    return answer.status_code, orjson.loads(answer.body)


def only_detail(body: Any) -> Any:
    (detail,) = body["detail"]
    return detail


class TestUnparsedBody:
    async def test_bytes_that_are_not_utf8_are_invalid_json(self):
        status, body = await answer_to(refusal_of(b'{"name": "\xff"}'))
        assert (status, body["error"]) == (400, "malformed_body")
        assert only_detail(body)["rule"] == "json_invalid"

    async def test_an_integer_past_the_digit_limit_is_out_of_the_int64_range(self):
        status, body = await answer_to(refusal_of(b"9" * 5000))
        assert (status, body["error"]) == (422, "validation_error")
        detail = only_detail(body)
        assert detail["rule"] == "int64_range"
        assert "of over 4300 digits" in detail["message"]

    async def test_nesting_past_the_recursion_limit_is_invalid_json(self):
        status, body = await answer_to(refusal_of(b"[" * 100_000))
        assert (status, body["error"]) == (400, "malformed_body")
        assert only_detail(body)["message"] == "Invalid JSON: nested too deeply"

    @pytest.mark.parametrize(
        "cause",
        [
            ValueError("invalid literal for int() with base 10: 'x'"),
            RecursionError("maximum recursion depth exceeded"),
            ClientDisconnect(),
        ],
    )
    async def test_any_other_cause_is_an_unreadable_body_never_a_number(self, cause):
        status, body = await answer_to(cause)
        assert (status, body["error"]) == (400, "malformed_body")
        assert (only_detail(body)["field"], only_detail(body)["rule"]) == ("body", "readable")

    async def test_an_http_error_of_a_route_keeps_its_status(self):
        exc = HTTPException(404, "Not Found")
        exc.__cause__ = ValueError("no such thing")
        scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
        answer = await on_http_error(Request(scope), exc)
        assert answer.status_code == 404
