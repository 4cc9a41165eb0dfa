"""Every error answer of the API: `{"error": code, "detail": ...}`, rendered in one place."""

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException

from fleetlog.errors import FleetlogError, InvalidPayload, MalformedBody, field_path
from fleetlog.metrics import INGEST_REJECTED
from fleetlog.records import int64_error

log = logging.getLogger(__name__)

# Where the metrics middleware keeps the request's id (api/middleware.py).
REQUEST_ID_KEY = "fleetlog.request_id"

# The paths that take logs: the reference API's, and the shippers' protocols' (docs/protocols.md),
# among them Elasticsearch's `/{index}/_bulk`.
INGEST_PATHS = frozenset(
    {"/api/log", "/api/logs/batch", "/loki/api/v1/push", "/v1/logs", "/_bulk", "/gelf"}
)


def is_ingest_path(path: str) -> bool:
    return path in INGEST_PATHS or path.endswith("/_bulk")


HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


class ErrorBody(BaseModel):
    """Every error answer: a stable code, a sentence for people, and details where useful."""

    error: str
    message: str
    detail: Any = None


def documented(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses, each answered with an ErrorBody."""
    return {
        status: {"model": ErrorBody, "description": description}
        for status, description in descriptions.items()
    }


def describe(errors: Iterable[ErrorDetails]) -> list[dict[str, Any]]:
    """Pydantic errors as the API states them: the field, the rule it broke, and why."""
    return [
        {
            "loc": ["body", *error["loc"]],
            "field": field_path(error["loc"]),
            "rule": error["type"],
            "message": error["msg"],
        }
        for error in errors
    ]


# jiter reads 2**64 as a number, but refuses one of over 4300 digits (Python's limit on
# int(str)) as invalid JSON: both are numbers no store can hold, refused the same way.
OUT_OF_RANGE = "number out of range"


def number_too_large(where: str) -> InvalidPayload:
    """The 422 of a number too long to even parse, where its field cannot be known."""
    error = int64_error()
    return InvalidPayload(
        "the body breaks a field rule",
        detail=[
            {
                "loc": ["body"],
                "field": "body",
                "rule": error.type,
                "message": f"{error.message()} (one {where} does not)",
            }
        ],
    )


# FastAPI answers a body json.loads refuses with anything but a JSONDecodeError (or one it
# could not read) with a bare 400 of this detail, the error as its cause.
PARSE_FAILED = "There was an error parsing the body"
UNREADABLE = "the body could not be read"
# The causes json.loads gives: an integer past Python's limit on int(str) (4300 digits unless
# PYTHONINTMAXSTRDIGITS says otherwise), and nesting past the recursion limit.
DIGIT_LIMIT = re.compile(r"Exceeds the limit \((\d+) digits\) for integer string conversion")
JSON_TOO_DEEP = "maximum recursion depth exceeded while decoding a JSON"


def malformed_json(message: str) -> MalformedBody:
    detail = [{"loc": ["body"], "field": "body", "rule": "json_invalid", "message": message}]
    return MalformedBody("the body is not valid JSON", detail=detail)


def invalid_payload(exc: ValidationError) -> FleetlogError:
    """Translate a body's ValidationError: broken JSON is a 400, broken field rules a 422."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for error in errors:
        if error["type"] == "json_invalid":
            where = error["msg"].partition(OUT_OF_RANGE)[2].strip()
            return number_too_large(where) if where else malformed_json(error["msg"])
    if any(error["type"] == "model_type" and not error["loc"] for error in errors):
        return InvalidPayload("the body must be a JSON object", detail=describe(errors))
    return InvalidPayload("the body breaks a field rule", detail=describe(errors))


def error_response(
    status: int,
    code: str,
    message: str,
    detail: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def count_rejection(method: str, path: str, exc: FleetlogError) -> None:
    if method == "POST" and is_ingest_path(path):
        INGEST_REJECTED.labels(exc.code).inc()


async def on_fleetlog_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FleetlogError)
    count_rejection(request.method, request.url.path, exc)
    return error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)


async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    for error in exc.errors():
        if error["type"] == "json_invalid":
            _, position = error["loc"]
            message = f"Invalid JSON: {error['ctx']['error']} at character {position}"
            return await on_fleetlog_error(request, malformed_json(message))
    detail = [
        {
            "loc": list(error["loc"]),
            "field": field_path(error["loc"][1:]),
            "rule": error["type"],
            "message": error["msg"],
        }
        for error in exc.errors()
    ]
    return error_response(422, "validation_error", "the request breaks a parameter rule", detail)


def unparsed_body(cause: BaseException) -> FleetlogError:
    """The answer to a body FastAPI could not parse, told by its exact cause: as ingest
    answers the same body where the cause is one of json.loads, else a 400 naming the body."""
    if isinstance(cause, UnicodeDecodeError):
        return malformed_json("Invalid JSON: not UTF-8")
    message = str(cause)
    if type(cause) is RecursionError and message.startswith(JSON_TOO_DEEP):
        return malformed_json("Invalid JSON: nested too deeply")
    digits = DIGIT_LIMIT.match(message) if type(cause) is ValueError else None
    if digits is not None:
        return number_too_large(f"of over {digits[1]} digits")
    detail = [{"loc": ["body"], "field": "body", "rule": "readable", "message": UNREADABLE}]
    return MalformedBody(UNREADABLE, detail=detail)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.detail == PARSE_FAILED and exc.__cause__ is not None:
        return await on_fleetlog_error(request, unparsed_body(exc.__cause__))
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The access log's id of the request, so its line and this one are found together.
    found: bytes | None = request.scope.get(REQUEST_ID_KEY)
    request_id = None if found is None else found.decode()
    log.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
        extra={"fields": {"request_id": request_id}},
    )
    return error_response(500, "internal_error", "fleetlog failed to answer this request")


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FleetlogError, on_fleetlog_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
