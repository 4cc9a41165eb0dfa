"""A bulk body: NDJSON lines, each action line followed by its source line (but `delete`'s).

What breaks the pairing of the lines, or an action line fleetlog cannot read, refuses the whole
request (`MalformedBulk`, a 400 in Elasticsearch's shape) and nothing of it is stored: past such
a line, which source goes with which action cannot be known. What is wrong with one action only
(its index name, a source that is not a JSON object) is that item's `Problem`.
"""

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

WITH_SOURCE = frozenset({"index", "create", "update"})
# The actions of `read_common`: those that store their source.
COMMON = frozenset({"index", "create"})
OPERATIONS = ("create", "delete", "index", "update")
MAX_ID_BYTES = 512
MAX_INDEX_BYTES = 255
# Elasticsearch's rules for index names.
INDEX_FORBIDDEN = frozenset('\\/*?"<>| ,#:')


class MalformedBulk(Exception):
    """The body is not a bulk request; `kind` is Elasticsearch's name for the error."""

    def __init__(self, reason: str, *, kind: str = "illegal_argument_exception") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one action is refused: Elasticsearch's error type and a reason."""

    kind: str
    reason: str
    rule: str | None = None


@dataclass(slots=True)
class Action:
    """One action; `source` is empty for those without one (`delete`) or one unread (`update`,
    or a `problem`)."""

    op: str
    index: str
    id: str | None
    source: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None


def parse_bulk(body: bytes | bytearray, *, index: str | None) -> list[Action]:
    """The actions of a bulk body; `index` is the one of the path (`/{index}/_bulk`), if any."""
    if index is not None and (why := index_problem(index)) is not None:
        raise MalformedBulk(
            f"Invalid index name [{index}], {why}", kind="invalid_index_name_exception"
        )
    return read_common(body, index) or read_carefully(body, index)


def read_common(body: bytes | bytearray, index: str | None) -> list[Action] | None:
    """The bulk every shipper sends (`index`/`create` pairs of objects, one per line, no blank
    line), read with one parse of the whole body; None for anything else, which
    `read_carefully` then reads line by line, naming what is wrong and where."""
    lines = body.rstrip(b"\n").split(b"\n")
    if len(lines) % 2:
        return None
    try:
        values = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(values) != len(lines):  # a line held more than one value
        return None
    actions = []
    for position in range(0, len(values), 2):
        head, source = values[position], values[position + 1]
        if type(head) is not dict or len(head) != 1 or type(source) is not dict:
            return None
        ((op, meta),) = head.items()
        if op not in COMMON or type(meta) is not dict:
            return None
        target, doc_id = meta.get("_index", index), meta.get("_id")
        if type(target) is not str or index_problem(target) is not None:
            return None
        if doc_id is not None and (type(doc_id) is not str or not 0 < len(doc_id) <= 128):
            return None
        actions.append(Action(op, target, doc_id, source))
    return actions or None


def read_carefully(body: bytes | bytearray, index: str | None) -> list[Action]:
    lines = numbered_lines(body)
    actions = []
    for number, line in lines:
        op, meta = read_action(number, line)
        target = meta.get("_index", index)
        if target is None:
            raise MalformedBulk(
                f"Validation Failed: 1: index is missing (line [{number}]);",
                kind="action_request_validation_exception",
            )
        source: tuple[dict[str, Any], Problem | None] = ({}, None)
        if op in WITH_SOURCE:
            following = next(lines, None)
            if following is None:
                raise MalformedBulk(
                    f"the {op} action on line [{number}] has no source line: every action but "
                    "delete is followed by its source on the next line"
                )
            if op != "update":
                source = read_source(*following)
        actions.append(action_of(number, op, meta, target, *source))
    if not actions:
        raise MalformedBulk(
            "Validation Failed: 1: no requests added;", kind="action_request_validation_exception"
        )
    return actions


def numbered_lines(body: bytes | bytearray) -> Iterator[tuple[int, bytes | bytearray]]:
    """The lines that are not blank, numbered from 1 as they are in the body."""
    pieces: list[bytes | bytearray] = list(body.split(b"\n"))
    return ((number, line) for number, line in enumerate(pieces, 1) if line.strip())


def read_action(number: int, line: bytes | bytearray) -> tuple[str, dict[str, Any]]:
    """The operation and metadata of an action line, `{"<op>": {...}}`."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise MalformedBulk(
            f"Malformed action/metadata line [{number}]: not JSON (at character {exc.pos})",
            kind="x_content_parse_exception",
        ) from None
    if not isinstance(value, dict) or len(value) != 1:
        raise MalformedBulk(
            f"Malformed action/metadata line [{number}], expected an object with one key, "
            f"one of [{', '.join(OPERATIONS)}]"
        )
    ((op, meta),) = value.items()
    if op not in OPERATIONS:
        raise MalformedBulk(
            f"Malformed action/metadata line [{number}], expected one of "
            f"[{', '.join(OPERATIONS)}] but found [{op}]"
        )
    if not isinstance(meta, dict):
        raise MalformedBulk(
            f"Malformed action/metadata line [{number}], the metadata of [{op}] must be an object"
        )
    return op, meta


def action_of(
    number: int,
    op: str,
    meta: dict[str, Any],
    index: object,
    source: dict[str, Any],
    problem: Problem | None,
) -> Action:
    if not isinstance(index, str):
        raise MalformedBulk(f"Malformed action/metadata line [{number}], [_index] must be text")
    why = index_problem(index)
    if why is not None:
        problem = Problem("invalid_index_name_exception", f"Invalid index name [{index}], {why}")
    return Action(op, index, read_id(number, meta.get("_id")), source, problem)


def read_id(number: int, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedBulk(f"Malformed action/metadata line [{number}], [_id] must be text")
    doc_id = str(value)
    size = len(doc_id.encode(errors="surrogatepass"))
    if not doc_id or size > MAX_ID_BYTES:
        raise MalformedBulk(
            f"Validation Failed: 1: the _id on line [{number}] must have 1 to {MAX_ID_BYTES} "
            f"bytes but has {size};",
            kind="action_request_validation_exception",
        )
    return doc_id


def read_source(number: int, line: bytes | bytearray) -> tuple[dict[str, Any], Problem | None]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        reason = f"failed to parse the source on line [{number}]: not JSON (at character {exc.pos})"
        return {}, Problem("document_parsing_exception", reason)
    if not isinstance(value, dict):
        reason = f"failed to parse the source on line [{number}]: not a JSON object"
        return {}, Problem("document_parsing_exception", reason)
    return value, None


@functools.lru_cache(maxsize=1024)
def index_problem(name: str) -> str | None:
    """What breaks Elasticsearch's rules for index names in `name`, if anything (a bulk names
    a few indexes a thousand times)."""
    if not name or len(name.encode(errors="surrogatepass")) > MAX_INDEX_BYTES:
        return f"must have 1 to {MAX_INDEX_BYTES} bytes"
    if name != name.lower():
        return "must be lowercase"
    if name[0] in "-_+" or name in (".", ".."):
        return "must not start with '-', '_' or '+', nor be '.' or '..'"
    if INDEX_FORBIDDEN.intersection(name) or "\x00" in name:
        return 'must not contain \\, /, *, ?, ", <, >, |, space, comma, #, : or NUL'
    return None
