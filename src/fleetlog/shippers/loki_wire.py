"""Loki push bodies, JSON and protobuf, read into the same streams of entries.

The whole body is read before anything of it is stored: a body that is not Loki's (broken JSON,
a value of the wrong shape, truncated protobuf, a snappy stream in the wrong framing, a labels
string that is no label set) is a 400 naming what broke, and stores nothing.
"""

from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

import cramjam
from google.protobuf.message import DecodeError
from pydantic import BaseModel, Field, PlainValidator, StrictStr, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from fleetlog.errors import MalformedBody, PayloadTooLarge, field_path
from fleetlog.shippers.labelset import LabelSetError, parse_labels
from fleetlog.shippers.loki_push_pb2 import PushRequest

INT64_MAX = 2**63 - 1
# The stream identifier of snappy's framed format, which Loki does not take: its push bodies
# are one snappy block.
SNAPPY_FRAMED = b"\xff\x06\x00\x00sNaPpY"


def nanoseconds(value: object) -> int:
    """Loki's JSON timestamp: decimal nanoseconds since the Unix epoch, as a string."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise PydanticCustomError(
            "loki_timestamp", "must be a string of nanoseconds since the Unix epoch"
        )
    if int(value) > INT64_MAX:
        raise PydanticCustomError("loki_timestamp", "must fit a signed 64-bit integer")
    return int(value)


Nanoseconds = Annotated[
    int,
    PlainValidator(nanoseconds),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,19}$"}),
]


class LokiEntry(NamedTuple):
    """`[ts, line]` or `[ts, line, {structured metadata}]`; read from protobuf alike."""

    ns: Nanoseconds
    line: StrictStr
    metadata: dict[str, StrictStr] = {}


class LokiStream(BaseModel):
    stream: dict[str, StrictStr] = Field(default_factory=dict)
    values: list[LokiEntry]


class LokiPush(BaseModel):
    """Loki's JSON push body (what `/loki/api/v1/push` takes as application/json)."""

    streams: list[LokiStream]


@dataclass(slots=True)
class Stream:
    """A stream of either encoding: its labels, and entries whose `ns` is an int.

    `metadata_nul_free`: no entry's structured metadata holds a NUL, as one scan of the body
    showed (not one per entry); False says nothing either way. The labels are not vouched for:
    in protobuf their text has Go's escapes, `\x00` among them.
    """

    labels: dict[str, str]
    entries: list[LokiEntry]
    metadata_nul_free: bool = False


def decode_json(body: bytes | bytearray) -> list[Stream]:
    try:
        push = LokiPush.model_validate_json(body)
    except ValidationError as exc:
        raise not_loki_json(exc) from None
    # A JSON string holds a NUL only escaped, as \u0000.
    nul_free = b"\\u0000" not in body and b"\x00" not in body
    return [Stream(stream.stream, stream.values, nul_free) for stream in push.streams]


def not_loki_json(exc: ValidationError) -> MalformedBody:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    detail = [
        {"field": field_path(error["loc"]), "rule": error["type"], "message": error["msg"]}
        for error in errors
    ]
    if any(error["type"] == "json_invalid" for error in errors):
        return MalformedBody("the body is not valid JSON", detail=detail)
    return MalformedBody("the body is not a Loki push request (JSON)", detail=detail)


def decode_protobuf(body: bytes | bytearray, *, limit: int) -> list[Stream]:
    """A snappy block of a `PushRequest`, its labels strings parsed."""
    content = bytes(unsnappy(body, limit))
    try:
        request = PushRequest.FromString(content)
    except DecodeError:
        raise malformed(
            "the body is not a Loki PushRequest: the protobuf is truncated or malformed",
            "protobuf",
        ) from None
    # Protobuf strings are UTF-8 as they are: a NUL in the metadata is a 0x00 byte.
    nul_free = b"\x00" not in content
    return [
        Stream(
            stream_labels(stream.labels, index),
            [
                LokiEntry(
                    (ts := entry.timestamp).seconds * 1_000_000_000 + ts.nanos,
                    entry.line,
                    {pair.name: pair.value for pair in entry.structuredMetadata},
                )
                for entry in stream.entries
            ],
            nul_free,
        )
        for index, stream in enumerate(request.streams)
    ]


def unsnappy(body: bytes | bytearray, limit: int) -> cramjam.Buffer:
    """The block's content; one that says it would pass `limit` is refused before inflating."""
    if body.startswith(SNAPPY_FRAMED):
        raise malformed(
            "the body is in snappy's framed format; Loki push takes one snappy block", "snappy"
        )
    try:
        if cramjam.snappy.decompress_raw_len(body) > limit:
            raise PayloadTooLarge(
                f"the body is over the limit of {limit} bytes once its snappy block is undone",
                detail=[{"field": "body", "rule": "max_bytes", "limit": limit}],
            )
        return cramjam.snappy.decompress_raw(body)
    except cramjam.DecompressionError:
        raise malformed("the body is not a snappy block (the block format)", "snappy") from None


def stream_labels(text: str, index: int) -> dict[str, str]:
    try:
        return parse_labels(text)
    except LabelSetError as exc:
        raise MalformedBody(
            f"the labels of stream {index} are not a Prometheus label set: {exc}",
            detail=[
                {
                    "field": f"streams[{index}].labels",
                    "rule": "label_set",
                    "message": str(exc),
                    "position": exc.position,
                }
            ],
        ) from None


def malformed(message: str, rule: str) -> MalformedBody:
    detail: list[dict[str, Any]] = [{"field": "body", "rule": rule, "message": message}]
    return MalformedBody(message, detail=detail)
