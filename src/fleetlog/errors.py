"""The errors fleetlog raises on purpose; each knows the HTTP status it is answered with."""

import math
from collections.abc import Iterable
from typing import Any, ClassVar


class FleetlogError(Exception):
    """Base of every domain error: a message a client may read, and an HTTP status."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        return {}


class InvalidPayload(FleetlogError):
    """The body broke a field rule; `detail` lists each error with its field and rule."""

    status = 422
    code = "validation_error"


def field_path(loc: Iterable[int | str]) -> str:
    """`("logs", 3, "log_level")` -> `logs[3].log_level`: how a detail names a field."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


class MalformedBody(FleetlogError):
    status = 400
    code = "malformed_body"


class IncompleteBody(MalformedBody):
    """The client went away before its body ended: nothing of it is stored."""

    code = "incomplete_body"


class UnsupportedTransferCoding(MalformedBody):
    code = "unsupported_transfer_coding"


class InvalidParameter(FleetlogError):
    """A query parameter fleetlog cannot use; `detail` names it and the rule it broke."""

    status = 400
    code = "invalid_parameter"


class QueryTimeout(InvalidParameter):
    """A search ran past the query timeout and was cancelled in the database."""

    code = "query_timeout"


class MalformedRequest(FleetlogError):
    """Not HTTP/1.1 that the server can parse; answered, where it can be, before closing."""

    status = 400
    code = "malformed_request"


class RequestTimeout(FleetlogError):
    status = 408
    code = "request_timeout"


class PayloadTooLarge(FleetlogError):
    status = 413
    code = "payload_too_large"


class UriTooLong(FleetlogError):
    status = 414
    code = "uri_too_long"


class HeadersTooLarge(FleetlogError):
    status = 431
    code = "headers_too_large"


class UnsupportedMediaType(FleetlogError):
    status = 415
    code = "unsupported_media_type"


class Unavailable(FleetlogError):
    """A transient condition: the client should retry after `retry_after` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class QueueFull(Unavailable):
    """The backlog of accepted but not yet stored logs is at its limit."""

    code = "backlog_full"


class BodiesOverBudget(Unavailable):
    """The bodies being read in this process hold all the memory they may."""

    code = "overloaded"


class StoreUnavailable(Unavailable):
    """The store (or the queue in front of it) cannot make logs durable right now."""

    code = "store_unavailable"


class RejectedBatch(FleetlogError):
    """The store refused a batch for what is in it (not for being down): a poison entry."""

    code = "rejected_batch"


class Misconfigured(FleetlogError):
    """A server fleetlog depends on is set up in a way that could lose accepted logs."""

    code = "misconfigured"


class Unauthorized(FleetlogError):
    """No credentials, or credentials fleetlog does not accept (unknown, revoked, expired)."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid

    @property
    def headers(self) -> dict[str, str]:
        # RFC 6750: name the scheme; say "invalid_token" only when a credential was sent.
        challenge = 'Bearer realm="fleetlog"'
        if self.invalid:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


class Forbidden(FleetlogError):
    """A valid identity without the right to do this."""

    status = 403
    code = "forbidden"


class RateLimited(FleetlogError):
    """Over a rate limit: retry after `retry_after` seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, limit: int, reset_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit
        self.reset_after = reset_after

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Retry-After": str(max(1, math.ceil(self.retry_after))),
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(max(1, math.ceil(self.reset_after))),
        }


class Conflict(FleetlogError):
    """The thing to create exists already."""

    status = 409
    code = "conflict"


class NotFound(FleetlogError):
    status = 404
    code = "not_found"


class InvalidIdempotencyKey(FleetlogError):
    """An Idempotency-Key header that is not one key of the syntax docs/lifecycle.md gives."""

    status = 400
    code = "invalid_idempotency_key"

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(
            message, detail=[{"field": "Idempotency-Key", "rule": rule, "message": message}]
        )


class IdempotencyKeyReused(FleetlogError):
    """The Idempotency-Key was first used for another request (method, path or body)."""

    status = 422
    code = "idempotency_key_reused"

    def __init__(self, message: str) -> None:
        rule = "same_request"
        super().__init__(
            message, detail=[{"field": "Idempotency-Key", "rule": rule, "message": message}]
        )


class IdempotencyKeyInFlight(FleetlogError):
    """A request with the same Idempotency-Key is still being processed: retry after a while."""

    status = 409
    code = "idempotency_key_in_flight"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(
            message, detail=[{"field": "Idempotency-Key", "rule": "in_flight", "message": message}]
        )
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}
