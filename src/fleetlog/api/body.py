"""Request bodies: size-capped while read, gzip/deflate decoded under the same cap, parsed once."""

import zlib
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from fleetlog.api.errors import invalid_payload
from fleetlog.api.security import ADMITTED
from fleetlog.errors import IncompleteBody, MalformedBody, PayloadTooLarge, UnsupportedMediaType
from fleetlog.idempotency.attempt import CURRENT
from fleetlog.metrics import CLIENT_DISCONNECTS

Model = TypeVar("Model", bound=BaseModel)

JSON_TYPES = ("application/json", "")
# zlib's wbits 32 + 15 accepts a gzip or a zlib header (HTTP's deflate is zlib-wrapped).
WBITS = {"gzip": 32 + 15, "x-gzip": 32 + 15, "deflate": 32 + 15}


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is over the limit of {limit} bytes",
        detail=[{"field": "body", "rule": "max_bytes", "limit": limit}],
    )


async def read_capped(request: Request, limit: int) -> bytes | bytearray:
    """The raw body, refused as soon as it passes `limit` bytes (declared or actually sent).

    Only a body that arrived whole is returned: a client gone before its end sent nothing.
    A body of one piece is returned as it came; one of several is gathered in one growing
    buffer, not a list joined at the end: half the peak, and large enough to be given back to
    the system when it is freed.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body: bytes | bytearray = b""
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:
                raise too_large(limit)
            if not body:
                body = chunk
            elif chunk:
                if isinstance(body, bytes):
                    body = bytearray(body)
                body += chunk
    except ClientDisconnect:
        # Shippers and load generators do this when they stop: counted, not an error of ours.
        route = getattr(request.scope.get("route"), "path_format", "unmatched")
        CLIENT_DISCONNECTS.labels(route).inc()
        raise IncompleteBody(
            "the connection closed before the body ended; nothing of it was stored",
            detail=[{"field": "body", "rule": "complete"}],
        ) from None
    return body


def decode(body: bytes | bytearray, encoding: str, limit: int) -> bytes | bytearray:
    """Undo `Content-Encoding`; a body that inflates past `limit` is refused, not inflated."""
    if encoding in ("", "identity"):
        return body
    if encoding not in WBITS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported",
            detail=[
                {"field": "Content-Encoding", "rule": "one_of", "allowed": ["gzip", "deflate"]}
            ],
        )
    return Inflation(encoding, limit).inflate(body)


class Inflation:
    """Inflates one body, and for gzip each member after the first (RFC 1952), in linear time.

    The body is fed in pieces, so what follows a member's end is never more than one piece,
    and the members are counted: an 8 MiB body of empty members would otherwise be 400,000
    decompressors.
    """

    PIECE = 64 * 1024
    MAX_MEMBERS = 1024

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.members = 1
        self.inflater = zlib.decompressobj(WBITS[encoding])
        self.fed = False
        self.data = bytearray()

    def inflate(self, body: bytes | bytearray) -> bytes | bytearray:
        view = memoryview(body)
        for start in range(0, len(view), self.PIECE):
            self.feed(view[start : start + self.PIECE])
        if not self.inflater.eof and self.fed:
            raise MalformedBody(f"the {self.encoding} body is truncated")
        return self.data

    def feed(self, piece: bytes | memoryview) -> None:
        while piece:
            if self.inflater.eof:
                self.next_member()
            self.fed = True
            try:
                self.data += self.inflater.decompress(piece, self.limit + 1 - len(self.data))
            except zlib.error as exc:
                raise MalformedBody(f"the body is not valid {self.encoding}") from exc
            if len(self.data) > self.limit or self.inflater.unconsumed_tail:
                raise too_large(self.limit)
            piece = self.inflater.unused_data

    def next_member(self) -> None:
        """A gzip member ended with data after it: the next member starts there."""
        if self.encoding == "deflate":
            raise MalformedBody("the deflate body has data after its end")
        self.members += 1
        if self.members > self.MAX_MEMBERS:
            raise MalformedBody(
                f"the gzip body has over {self.MAX_MEMBERS} members",
                detail=[{"field": "body", "rule": "max_gzip_members", "limit": self.MAX_MEMBERS}],
            )
        self.inflater = zlib.decompressobj(WBITS[self.encoding])


def check_json_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not accepted here; send application/json",
            detail=[{"field": "Content-Type", "rule": "one_of", "allowed": ["application/json"]}],
        )


async def read_decoded(request: Request, *, limit: int) -> bytes | bytearray:
    """The body, read under `limit` and its Content-Encoding undone under the same cap.

    A request with an Idempotency-Key claims it here, once its body is whole and before any of
    it is used. Its sender was admitted before the body was read, so the key is scoped to that
    credential; a request with no body (never admitted early) stores nothing and claims none.
    """
    body = await read_capped(request, limit)
    decoded = decode(body, request.headers.get("content-encoding", "").strip().lower(), limit)
    attempt = CURRENT.get()
    principal = request.scope.get(ADMITTED)
    if attempt is not None and principal is not None:
        await attempt.claim(principal.subject, decoded)
    return decoded


async def parse_json(request: Request, model: type[Model], *, limit: int) -> Model:
    """Read, decode and validate a JSON body in one pass of pydantic's parser."""
    check_json_type(request)
    body = await read_decoded(request, limit=limit)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_payload(exc) from None
