"""ASGI middleware bounding what a request may make fleetlog hold: URL, headers and body."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetlog.api.body import too_large
from fleetlog.api.errors import error_response
from fleetlog.errors import FleetlogError, HeadersTooLarge, UriTooLong


class RequestLimits:
    """Refuse an over-long URL (414), header block (431) or body (413) before any route runs.

    A declared Content-Length is checked at once. A chunked body is read here, up to the cap,
    and handed on whole: every route, not only those reading their own bodies, stays bounded.
    """

    def __init__(
        self, app: ASGIApp, *, max_url_bytes: int, max_header_bytes: int, max_body_bytes: int
    ) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error, chunked = self.check_head(scope)
        if error is None and chunked:
            body, error = await self.read_body(receive)
            receive = replay(body, receive)
        if error is not None:
            response = error_response(error.status, error.code, error.message, error.detail)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check_head(self, scope: Scope) -> tuple[FleetlogError | None, bool]:
        """The limit the URL or headers break, if any; and whether the body comes chunked."""
        if len(scope["raw_path"]) + len(scope["query_string"]) > self.max_url_bytes:
            return UriTooLong(f"the URL is over {self.max_url_bytes} bytes"), False
        size = 0
        chunked = False
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return too_large(self.max_body_bytes), False
            chunked = chunked or name == b"transfer-encoding"
        if size > self.max_header_bytes:
            return HeadersTooLarge(f"the headers are over {self.max_header_bytes} bytes"), False
        return None, chunked

    async def read_body(self, receive: Receive) -> tuple[bytes, FleetlogError | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", too_large(self.max_body_bytes)
            chunks.append(chunk)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return b"".join(chunks), None


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over the body read already, then waits as the original would."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive_replayed() -> Message:
        return pending.pop() if pending else await receive()

    return receive_replayed
