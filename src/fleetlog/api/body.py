"""Request bodies: size-capped while read, gzip/deflate decoded under the same cap, parsed once."""

import zlib
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from fleetlog.api.errors import invalid_payload
from fleetlog.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType

Model = TypeVar("Model", bound=BaseModel)

JSON_TYPES = ("application/json", "")
# zlib's wbits 32 + 15 accepts a gzip or a zlib header (HTTP's deflate is zlib-wrapped).
WBITS = {"gzip": 32 + 15, "x-gzip": 32 + 15, "deflate": 32 + 15}


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is over the limit of {limit} bytes",
        detail=[{"field": "body", "rule": "max_bytes", "limit": limit}],
    )


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it passes `limit` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def decode(body: bytes, encoding: str, limit: int) -> bytes:
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
    inflater = zlib.decompressobj(WBITS[encoding])
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(f"the body is not valid {encoding}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise too_large(limit)
    if not inflater.eof:
        raise MalformedBody(f"the {encoding} body is truncated")
    if inflater.unused_data:
        raise MalformedBody(f"the {encoding} body has data after its end")
    return data


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
