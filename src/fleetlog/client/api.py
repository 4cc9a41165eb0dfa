"""The search and tail API over HTTP, as a terminal client uses it; httpx errors end here."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from fleetlog import __version__

DEFAULT_URL = "http://127.0.0.1:8000"
# The most logs the server answers in one page.
PAGE_LIMIT = 1000
Log = dict[str, Any]
Order = Literal["desc", "asc"]


class ClientError(Exception):
    """What went wrong, in one line a person can act on; `retryable` when trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True, slots=True)
class Search:
    """One search: `limit` logs at most over all its pages, every log when 0."""

    q: str = ""
    since: str | None = None
    until: str | None = None
    order: Order = "desc"
    limit: int = 100

    def params(self) -> dict[str, str]:
        given = {"q": self.q, "since": self.since, "until": self.until}
        return {name: value for name, value in given.items() if value} | {"order": self.order}


class LogApi:
    """A fleetlog server at `url`, reached with `api_key` sent as a Bearer token."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        read_timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"fleetlog/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        timeout = httpx.Timeout(read_timeout, connect=10.0)
        self.http = httpx.Client(
            base_url=server_url(self.url), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> "LogApi":
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def pages(self, search: Search) -> Iterator[list[Log]]:
        """The search's logs page by page, following `next_cursor` until `limit` logs."""
        remaining = search.limit or None
        cursor: str | None = None
        while remaining is None or remaining > 0:
            size = PAGE_LIMIT if remaining is None else min(PAGE_LIMIT, remaining)
            params = search.params() | {"limit": str(size)}
            if cursor is not None:
                params["cursor"] = cursor
            logs, cursor = self._page(params)
            page = logs[:size]
            yield page
            if remaining is not None:
                remaining -= len(page)
            if cursor is None:
                return

    @contextmanager
    def tail(self, q: str, *, last_event_id: str | None) -> Iterator[Iterator[str]]:
        """The lines of one tail connection, resumed after `last_event_id` when given."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        params = {"q": q} if q else {}
        with (
            self.translated(),
            self.http.stream("GET", "/api/tail", params=params, headers=headers) as response,
        ):
            ensure_success(response)
            yield self.lines(response)

    @contextmanager
    def export(self, params: dict[str, str]) -> Iterator[Iterator[bytes]]:
        """The bytes of `GET /api/export`, as they arrive."""
        headers = {"Accept": "*/*"}
        with (
            self.translated(),
            self.http.stream("GET", "/api/export", params=params, headers=headers) as response,
        ):
            ensure_success(response)
            yield self.raw(response)

    def raw(self, response: httpx.Response) -> Iterator[bytes]:
        with self.translated():
            yield from response.iter_raw()

    def count(self, params: dict[str, str]) -> int:
        """How many logs `GET /api/logs/count` finds for these search parameters."""
        with self.translated():
            response = self.http.get("/api/logs/count", params=params)
        ensure_success(response)
        try:
            return sum(int(bucket["count"]) for bucket in response.json()["buckets"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ClientError(f"{self.url}/api/logs/count did not answer counts") from exc

    def send_batch(self, body: bytes, *, key: str) -> httpx.Response:
        """`POST /api/logs/batch` of a gzip'ed body with its Idempotency-Key; any answer."""
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Idempotency-Key": f'"{key}"',
        }
        with self.translated():
            return self.http.post("/api/logs/batch", content=body, headers=headers)

    def lines(self, response: httpx.Response) -> Iterator[str]:
        with self.translated():
            yield from response.iter_lines()

    def _page(self, params: dict[str, str]) -> tuple[list[Log], str | None]:
        with self.translated():
            response = self.http.get("/api/logs", params=params)
        ensure_success(response)
        try:
            page = response.json()
            logs, cursor = page["data"], page.get("next_cursor")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ClientError(f"{self.url}/api/logs did not answer a page of logs") from None
        if not isinstance(logs, list) or not (cursor is None or isinstance(cursor, str)):
            raise ClientError(f"{self.url}/api/logs did not answer a page of logs")
        return logs, cursor or None

    @contextmanager
    def translated(self) -> Iterator[None]:
        """httpx's errors, said once as ClientErrors naming the server."""
        try:
            yield
        except httpx.ConnectError as exc:
            raise ClientError(
                f"cannot connect to {self.url}: {reason(exc)}", retryable=True
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"{self.url} did not answer in time", retryable=True) from None
        except httpx.TransportError as exc:
            message = f"the connection to {self.url} failed: {reason(exc)}"
            raise ClientError(message, retryable=True) from None


def server_url(url: str) -> httpx.URL:
    """`url` checked to be an http(s) address, before any request is tried."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ClientError(f"{url!r} is not a URL: {exc}") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ClientError(f"{url!r} is not a URL such as {DEFAULT_URL}")
    return parsed


def reason(exc: Exception) -> str:
    """The innermost words of a transport error: `Connection refused`, not `[Errno 111] …`."""
    text = str(exc) or type(exc).__name__
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text


def ensure_success(response: httpx.Response) -> None:
    """A ClientError for any answer but a 2xx, naming the server's own reason."""
    if response.is_success:
        return
    response.read()
    status = response.status_code
    raise ClientError(
        f"{describe_error(response)} (HTTP {status})",
        retryable=status == 429 or status >= 500,
        status=status,
    )


def describe_error(response: httpx.Response) -> str:
    """The server's `{"error", "message", "detail"}` as one line; its status line otherwise."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return response.reason_phrase or "the server refused the request"
    line = str(body.get("message") or body.get("error") or response.reason_phrase)
    detail = body.get("detail")
    for problem in detail if isinstance(detail, list) else []:
        if isinstance(problem, dict) and str(problem.get("message")) not in line:
            line = f"{line}; {problem_words(problem)}"
    return line


def problem_words(problem: dict[str, Any]) -> str:
    """One detail entry: `q at position 7: found ')', expected a word`."""
    where = str(problem.get("field") or "")
    if (position := problem.get("position")) is not None:
        where = f"{where} at position {position}".strip()
    message = str(problem.get("message") or problem.get("rule") or "")
    return f"{where}: {message}" if where and message else where or message
