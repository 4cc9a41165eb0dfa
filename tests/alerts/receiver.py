"""A real local webhook receiver: records every request, answers as its plan says."""

import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def key(self) -> str:
        return self.headers["idempotency-key"]

    def signed_by(self, secret: str) -> bool:
        """The signature checked as a receiver would: HMAC-SHA256 over `t.body`."""
        parts = dict(part.split("=", 1) for part in self.headers["x-fleetlog-signature"].split(","))
        expected = hmac.new(
            secret.encode(), parts["t"].encode() + b"." + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    always: int | None = None
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, received: Received) -> int:
        with self.lock:
            self.received.append(received)
            if self.always is not None:
                return self.always
            return 500 if len(self.received) <= self.fail_first else 200

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def keys(self) -> list[str]:
        with self.lock:
            return [each.key for each in self.received]


@contextmanager
def receiving(*, fail_first: int = 0, always: int | None = None) -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1 until the block ends."""
    receiver: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            headers = {name.lower(): value for name, value in self.headers.items()}
            assert receiver is not None
            status = receiver.answer(Received(headers, self.rfile.read(length)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads what it received."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(
        f"http://127.0.0.1:{server.server_address[1]}/hook", fail_first=fail_first, always=always
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
