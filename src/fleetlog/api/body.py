"""Request bodies: size-capped while read, gzip/deflate decoded under the same cap, parsed once."""

import zlib
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from fleetlog.api.errors import invalid_payload
from fleetlog.errors import IncompleteBody, MalformedBody, PayloadTooLarge, UnsupportedMediaType

Model = TypeVar("Model", bound=BaseModel)

JSON_TYPES = ("application/json", "")
# zlib's wbits 32 + 15 accepts a gzip or a zlib header (HTTP's deflate is zlib-wrapped).
WBITS = {"gzip": 32 + 15, "x-gzip": 32 + 15, "deflate": 32 + 15}


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is over the limit of {limit} bytes",
        detail=[{"field": "body", "rule": "max_bytes", "limit": limit}],
    )


async def read_capped(request: Request, limit: int) -> bytearray:
    """The raw body, refused as soon as it passes `limit` bytes (declared or actually sent).

    Only a body that arrived whole is returned: a client gone before its end sent nothing.
    One growing buffer, not a list of chunks joined at the end: half the peak, and large
    enough to be given back to the system when it is freed.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:
                raise too_large(limit)
            body += chunk
    except ClientDisconnect:
        raise IncompleteBody(
            "the connection closed before the body ended; nothing of it was stored",
            detail=[{"field": "body", "rule": "complete"}],
        ) from None
    return body


def decode(body: bytes | bytearray, encoding: str, limit: int) -> bytes | bytearray:
    """Undo `Content-Encoding`; a body that inflates past `limit` is refused, not inflated.

    A gzip body may hold several members, one after another (RFC 1952): they inflate to
    their concatenation.
    """
    if encoding in ("", "identity"):
        return body
    if encoding not in WBITS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported",
            detail=[
                {"field": "Content-Encoding", "rule": "one_of", "allowed": ["gzip", "deflate"]}
            ],
        )
    data, rest = inflate(body, encoding, limit)
    while rest and encoding != "deflate":
        member, rest = inflate(rest, encoding, limit - len(data))
        data += member
    if rest:
        raise MalformedBody(f"the {encoding} body has data after its end")
    return data


def inflate(body: bytes | bytearray, encoding: str, limit: int) -> tuple[bytes, bytes]:
    """One compressed stream of `body` inflated, and what follows it."""
    inflater = zlib.decompressobj(WBITS[encoding])
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(f"the body is not valid {encoding}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise too_large(limit)
    if not inflater.eof:
        raise MalformedBody(f"the {encoding} body is truncated")
    return data, inflater.unused_data


def check_json_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not accepted here; send application/json",
            detail=[{"field": "Content-Type", "rule": "one_of", "allowed": ["application/json"]}],
        )


async def parse_json(request: Request, model: type[Model], *, limit: int) -> Model:
    """Read, decode and validate a JSON body in one pass of pydantic's parser."""
    check_json_type(request)
    body = await read_capped(request, limit)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    try:
        return model.model_validate_json(decode(body, encoding, limit))
    except ValidationError as exc:
        raise invalid_payload(exc) from None
