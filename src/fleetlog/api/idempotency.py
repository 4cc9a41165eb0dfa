"""`Idempotency-Key` on the ingest routes (draft-ietf-httpapi-idempotency-key-header).

ASGI middleware, between the request limits and the routes: a request to an ingest path
without the header costs one look through its headers. With it, the key is checked (400 when
malformed), an `Attempt` is opened for the request's task (idempotency/attempt.py), the route's
answer is held until the attempt has kept it (or released the key), then sent. A key whose
first answer is kept is answered with it again, with `Idempotent-Replayed: true`.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetlog.api.errors import count_rejection, error_response, is_ingest_path
from fleetlog.errors import FleetlogError, InvalidIdempotencyKey
from fleetlog.idempotency.answers import Answer
from fleetlog.idempotency.attempt import CURRENT, Attempt, Replayed

HEADER = b"idempotency-key"
MAX_KEY_CHARS = 255
# Headers of an answer that belong to its one response, not to the answer kept for retries.
NOT_KEPT = frozenset({b"content-length", b"date", b"server", b"connection", b"transfer-encoding"})
BARE_FORBIDDEN = frozenset('",\\')


def header_values(scope: Scope) -> list[bytes]:
    return [value for name, value in scope["headers"] if name == HEADER]


def parse_key(values: list[bytes]) -> str:
    """The key: an sf-string (RFC 8941), as the draft has it, or the same characters bare."""
    if len(values) > 1:
        raise InvalidIdempotencyKey("send one Idempotency-Key header", rule="single")
    text = values[0].decode("latin-1").strip()
    key = unquoted(text) if text.startswith('"') else bare(text)
    if not key:
        raise InvalidIdempotencyKey("the Idempotency-Key is empty", rule="min_length")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidIdempotencyKey(
            f"the Idempotency-Key is over {MAX_KEY_CHARS} characters", rule="max_length"
        )
    return key


def unquoted(text: str) -> str:
    """The characters of an sf-string: printable ASCII in quotes, `\\"` and `\\\\` escaped."""
    malformed = InvalidIdempotencyKey(
        'the Idempotency-Key must be a quoted string of printable ASCII, e.g. "8e03978e-40d5"',
        rule="sf_string",
    )
    key: list[str] = []
    position = 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 >= len(text) or text[position + 1] not in '"\\':
                raise malformed
            key.append(text[position + 1])
            position += 2
            continue
        if char == '"':
            if position != len(text) - 1:
                raise malformed
            return "".join(key)
        if not " " <= char <= "~":
            raise malformed
        key.append(char)
        position += 1
    raise malformed


def bare(text: str) -> str:
    if any(not "!" <= char <= "~" or char in BARE_FORBIDDEN for char in text):
        raise InvalidIdempotencyKey(
            "the Idempotency-Key must be printable ASCII without spaces, or a quoted string",
            rule="sf_string",
        )
    return text


class HeldAnswer:
    """The route's answer, held back until its attempt is settled."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    def answer(self) -> Answer | None:
        if not self.messages or self.messages[0]["type"] != "http.response.start":
            return None
        start = self.messages[0]
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in start.get("headers", [])
            if name.lower() not in NOT_KEPT
        ]
        body = b"".join(message.get("body", b"") for message in self.messages[1:])
        return Answer(start["status"], headers, body)


async def send_answer(answer: Answer, send: Send, *, replayed: bool) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class IdempotentIngest:
    """Serves the ingest routes' requests that carry an Idempotency-Key (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ingest_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        values = header_values(scope)
        if not values:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(values)
        except FleetlogError as exc:
            count_rejection(scope["method"], scope["path"], exc)
            response = error_response(exc.status, exc.code, exc.message, exc.detail)
            await response(scope, receive, send)
            return
        registry = scope["app"].state.services.answers
        attempt = Attempt(registry, key, method=scope["method"], path=scope["path"])
        await self.serve(attempt, scope, receive, send)

    async def serve(self, attempt: Attempt, scope: Scope, receive: Receive, send: Send) -> None:
        held = HeldAnswer()
        current = CURRENT.set(attempt)
        try:
            await self.app(scope, receive, held.send)
        except Replayed as replayed:
            await send_answer(replayed.answer, send, replayed=True)
            return
        except BaseException:
            await attempt.settle(None)
            raise
        finally:
            CURRENT.reset(current)
        await attempt.settle(held.answer())
        for message in held.messages:
            await send(message)
