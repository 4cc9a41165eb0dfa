"""ASGI middleware bounding what a request may make fleetlog hold: URL, headers and body.

No byte of a body is read before the request is admitted:
* its credential is identified, checked for the scope the path needs and counted against its
  rate (the sign-in form, the only body taken from nobody, is counted against the client's
  address and gets a small cap instead), so a stranger's body is never buffered;
* the body fits the cap (a declared Content-Length is checked at once, a chunked body as it
  arrives), and the process's byte budget for bodies being read: Content-Length is reserved whole
  before reading, a chunked body as it comes. Past the cap the answer is 413, past the budget 503.
An answer given before the body was read whole says `Connection: close`, so the rest of that body
is never read either. The routes read bodies themselves, as they arrive: a body cut off before its
end is refused by them (IncompleteBody), never taken for whole.
"""

from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetlog.api.body import too_large
from fleetlog.api.errors import count_rejection, error_response, is_ingest_path
from fleetlog.api.memory import MemoryReturn
from fleetlog.api.security import ADMITTED, TOKEN_URL, presented_credential
from fleetlog.auth.principals import Scope as AuthScope
from fleetlog.errors import (
    BodiesOverBudget,
    FleetlogError,
    HeadersTooLarge,
    UnsupportedTransferCoding,
    UriTooLong,
)

# The sign-in form (a name and a password, or a refresh token) is the only body fleetlog reads
# from a client it does not know yet.
SIGN_IN_BODY_BYTES = 16 * 1024
TRIM_EVERY_BYTES = 64 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyBudget:
    """Bytes of request bodies this process may hold at once, shared by every request."""

    def __init__(self, capacity: int, *, retry_after: float) -> None:
        self.capacity = capacity
        self.retry_after = retry_after
        self.in_use = 0
        self.memory = MemoryReturn(every=min(capacity, TRIM_EVERY_BYTES))

    def take(self, size: int) -> None:
        if self.in_use + size > self.capacity:
            raise BodiesOverBudget(
                f"the request bodies being read hold the {self.capacity} bytes they may",
                retry_after=self.retry_after,
            )
        self.in_use += size

    def give(self, size: int) -> None:
        self.in_use -= size
        self.memory.freed_body(size, idle=self.in_use == 0)


@dataclass(slots=True)
class Framing:
    """How a request's body comes: its declared length, or chunked; none at all."""

    declared: int | None
    chunked: bool

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.declared)


class RequestLimits:
    """Refuse an over-long URL (414), header block (431) or body (413) before any route runs;
    identify who sends a body, and keep the bodies being read within the process's budget."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_url_bytes: int,
        max_header_bytes: int,
        max_body_bytes: int,
        budget: BodyBudget,
    ) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            framing = self.check_head(scope)
            # Only these methods have routes that read a body; any other's is never read.
            admitted = framing.has_body and scope["method"] in BODY_METHODS
            limit = await self.admit_body(scope, framing) if admitted else 0
        except FleetlogError as exc:
            await refuse(scope, send, exc)
            return
        if not admitted:
            await self.app(scope, receive, send)
            return
        if framing.chunked:
            meter = BodyMeter(scope, receive, send, limit=limit, budget=self.budget)
            receive, send = meter.receive, meter.send
        try:
            await self.app(scope, receive, send)
        finally:
            # A declared length was reserved whole (and httptools reads no more than it);
            # a chunked body as it came.
            self.budget.give(meter.reserved if framing.chunked else framing.declared or 0)

    def check_head(self, scope: Scope) -> Framing:
        """How the body comes; raises the limit the URL or headers break, if any."""
        if len(scope["raw_path"]) + len(scope["query_string"]) > self.max_url_bytes:
            raise UriTooLong(f"the URL is over {self.max_url_bytes} bytes")
        size = 0
        framing = Framing(declared=None, chunked=False)
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length" and value.isdigit():
                framing.declared = int(value)
            elif name == b"transfer-encoding":
                framing.chunked = check_transfer_coding(value)
        if size > self.max_header_bytes:
            raise HeadersTooLarge(f"the headers are over {self.max_header_bytes} bytes")
        return framing

    async def admit_body(self, scope: Scope, framing: Framing) -> int:
        """Before its body is read: who sends it, may they, and room for it. Returns its cap.

        The principal admitted is kept in the scope: the route checks its own scope against
        it, and neither identifies nor rate-limits the request again.
        """
        gatekeeper = scope["app"].state.gatekeeper
        client = scope.get("client")
        address = client[0] if client else None
        limit = self.max_body_bytes
        if scope["path"] == TOKEN_URL:
            limit = min(limit, SIGN_IN_BODY_BYTES)
            await gatekeeper.throttle_address(address)
        else:
            credential = presented_credential(Headers(scope=scope))
            required = body_scope(scope["path"])
            scope[ADMITTED] = await gatekeeper.admit(credential, required, address)
        if framing.declared is not None and not framing.chunked:
            if framing.declared > limit:
                raise too_large(limit)
            self.budget.take(framing.declared)
        return limit


def body_scope(path: str) -> AuthScope | None:
    """The scope a body sent to `path` needs: ingest, or admin for keys and users."""
    if is_ingest_path(path):
        return AuthScope.INGEST
    if path.startswith(("/api/keys", "/api/users")):
        return AuthScope.ADMIN
    return None


def check_transfer_coding(value: bytes) -> bool:
    """True for `chunked`, the one transfer coding fleetlog reads; any other is refused."""
    if value.strip().lower() != b"chunked":
        raise UnsupportedTransferCoding(
            f"Transfer-Encoding {value.decode('latin-1')!r} is not supported; send it chunked "
            "and name a compression in Content-Encoding",
            detail=[{"field": "Transfer-Encoding", "rule": "one_of", "allowed": ["chunked"]}],
        )
    return True


class BodyMeter:
    """The receive and send of a request whose body counts against its cap and the budget.

    Past either, `receive` raises the refusal for the route to answer, and `send` answers the
    refusal whatever the route makes of it (FastAPI turns errors while reading into a 400).
    """

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, *, limit: int, budget: BodyBudget
    ) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.budget = budget
        self.received = 0
        self.reserved = 0
        # The answer to send instead of the route's; never the exception itself, whose
        # traceback holds the body read so far in a cycle through this meter.
        self.refusal: Response | None = None

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            try:
                if self.received > self.limit:
                    raise too_large(self.limit)
                if self.received > self.reserved:
                    self.budget.take(self.received - self.reserved)
                    self.reserved = self.received
            except FleetlogError as exc:
                self.refusal = closing_answer(exc)
                raise
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is None:
            await self._send(message)
        elif message["type"] == "http.response.start":
            await self.refusal(self.scope, never_receive, self._send)


async def refuse(scope: Scope, send: Send, exc: FleetlogError) -> None:
    """Answer `exc` before reading the body, and close: what may follow is never read."""
    count_rejection(scope["method"], scope["path"], exc)
    await closing_answer(exc)(scope, never_receive, send)


def closing_answer(exc: FleetlogError) -> Response:
    headers = {**exc.headers, "Connection": "close"}
    return error_response(exc.status, exc.code, exc.message, exc.detail, headers)


async def never_receive() -> Message:
    raise RuntimeError("an error answer reads nothing of the request")
