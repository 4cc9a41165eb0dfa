"""Queries: a device's newest logs a page at a time, and the counts behind /api/stats.

A page ends at `limit` logs or before `max_response_bytes`, whichever comes first (it always
holds one log); `next_cursor` then says where the next page begins. Each log is rendered to
JSON once, with its `log_data` spliced in as the store's text, never parsed; the answer goes
out as those pieces. A read holds about twice its answer: the rows as read, and as rendered.

Embedded, answers come from SQLite (read-your-writes) and stats from a per-process cache. In
Redis mode both are cached in Redis (see `cache.py`): a device's first page for each of
CACHED_LIMITS, sliced for the limits up to it. Pages after a cursor are not cached.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from fleetlog.cache import QueryCache
from fleetlog.errors import InvalidParameter
from fleetlog.event_time import FIRST, LAST
from fleetlog.records import EPOCH, MICROSECOND, Stats, epoch_us
from fleetlog.search.grammar import parse
from fleetlog.search.plan import Device, conjoin
from fleetlog.search.times import closed_days, time_range
from fleetlog.store.logs import LogStore, Position, Selection, StoredLog, of_device

CACHED_LIMITS = (10, 100, 250, 500, 1000)
# What the answer holds besides its logs: {"total":…,"source":…,"data":[…],"next_cursor":…}.
ENVELOPE_BYTES = 160
CHUNK_BYTES = 64 * 1024
CURSOR_DIGEST = 8
CURSOR_PERSON = b"fleetlog-cursor"
CURSOR_FORM = re.compile(rb"(-?[0-9]{1,20})\.([0-9]{1,19})")
MAX_LOG_ID = 2**63 - 1


def cached_limit(limit: int) -> int:
    """The smallest cached limit that covers `limit`."""
    return next(cached for cached in CACHED_LIMITS if cached >= limit)


class Cursors:
    """Writes and reads `next_cursor`: where a page ended, with a digest keyed by the server's
    secret over the page's `context` (the device, or the search and its parameters). A cursor
    says nothing secret; the digest refuses edited ones, those of another device or search,
    and made-up ones."""

    def __init__(self, secret: str) -> None:
        self.key = hashlib.blake2b(secret.encode(), person=CURSOR_PERSON).digest()

    def sign(self, context: str, raw: bytes) -> str:
        """`raw` (`<µs since the epoch>.<log id>`) and its digest, as a cursor."""
        token = base64.urlsafe_b64encode(raw + self._digest(context, raw))
        return token.rstrip(b"=").decode()

    def encode(self, context: str, position: Position) -> str:
        return self.sign(context, b"%d.%d" % (epoch_us(position.created_at), position.id))

    def decode(self, context: str, cursor: str) -> Position:
        """The position `encode` wrote for this context; a 400 naming `cursor` otherwise."""
        try:
            return self._position(context, cursor)
        except (ValueError, binascii.Error):
            problem = {
                "field": "cursor",
                "rule": "cursor_invalid",
                "message": "must be a next_cursor that this same query answered with",
            }
            raise InvalidParameter(
                "the cursor is not one of this query's", detail=[problem]
            ) from None

    def _position(self, context: str, cursor: str) -> Position:
        token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        raw, digest = token[:-CURSOR_DIGEST], token[-CURSOR_DIGEST:]
        if not hmac.compare_digest(digest, self._digest(context, raw)):
            raise ValueError("digest")
        form = CURSOR_FORM.fullmatch(raw)
        if form is None:
            raise ValueError("form")
        created_us, log_id = int(form[1]), int(form[2])
        # Checked even when signed: past them the store's driver fails instead of finding none.
        if not epoch_us(FIRST) <= created_us <= epoch_us(LAST) or not 1 <= log_id <= MAX_LOG_ID:
            raise ValueError("range")
        return Position(EPOCH + created_us * MICROSECOND, log_id)

    def _digest(self, context: str, raw: bytes) -> bytes:
        message = context.encode() + b"\x00" + raw
        return hashlib.blake2b(message, key=self.key, digest_size=CURSOR_DIGEST).digest()


def render_log(log: StoredLog) -> bytes:
    """One log as the API answers it, its `log_data` the stored JSON text."""
    head = orjson.dumps(
        {
            "id": log.id,
            "device_id": log.device_id,
            "log_level": log.log_level,
            "message": log.message,
        }
    )
    times = orjson.dumps(
        {"created_at": log.created_at, "received_at": log.received_at}, option=orjson.OPT_UTC_Z
    )
    return b'%b,"log_data":%b,%b' % (head[:-1], log.log_data.encode(), times[1:])


@dataclass(slots=True)
class Page:
    """Rendered logs of one device (newest first) or of a search (in its order); `more` when
    others may follow. A search's page answers `{data, next_cursor, took_ms}`."""

    context: str
    cursors: Cursors
    rows: list[bytes] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    more: bool = False
    source: str = "database"
    took_ms: int | None = None

    @property
    def size(self) -> int:
        return sum(len(row) + 1 for row in self.rows)

    def first(self, limit: int, *, source: str) -> "Page":
        more = self.more or len(self.rows) > limit
        rows, positions = self.rows[:limit], self.positions[:limit]
        return Page(self.context, self.cursors, rows, positions, more, source)

    def envelope(self) -> tuple[bytes, bytes]:
        """What comes before the rows of the answer, and after them."""
        if self.took_ms is None:
            head = b'{"total":%d,"source":"%b","data":[' % (len(self.rows), self.source.encode())
        else:
            head = b'{"took_ms":%d,"data":[' % self.took_ms
        tail = b"]"
        if self.more and self.positions:
            cursor = self.cursors.encode(self.context, self.positions[-1])
            tail += b',"next_cursor":"%b"' % cursor.encode()
        return head, tail + b"}"

    def answer_bytes(self) -> int:
        head, tail = self.envelope()
        return len(head) + self.size - bool(self.rows) + len(tail)

    def chunks(self) -> Iterator[bytes]:
        """The answer, `{total, source, data[, next_cursor]}`, in pieces of about CHUNK_BYTES;
        the rows are let go of as they are sent."""
        head, tail = self.envelope()
        pending, pending_bytes = [head], 0
        rows, self.rows = self.rows[::-1], []
        separator = b""
        while rows:
            row = rows.pop()
            if len(row) >= CHUNK_BYTES:
                # A large row goes out as it is, never copied into a chunk.
                yield b"".join((*pending, separator))
                yield row
                pending, pending_bytes = [], 0
            else:
                pending += (separator, row)
                pending_bytes += len(row)
            separator = b","
            if pending_bytes >= CHUNK_BYTES:
                yield b"".join(pending)
                pending, pending_bytes = [], 0
        pending.append(tail)
        yield b"".join(pending)

    def encoded(self) -> bytes:
        """The page as the cache keeps it: a JSON header `[more, [[bytes, µs, id], …]]`, a
        newline, then the rendered rows back to back."""
        index = [
            [len(row), epoch_us(position.created_at), position.id]
            for row, position in zip(self.rows, self.positions, strict=True)
        ]
        return orjson.dumps([self.more, index]) + b"\n" + b"".join(self.rows)

    @classmethod
    def decoded(cls, context: str, cursors: Cursors, data: bytes) -> "Page":
        header, _, rows = data.partition(b"\n")
        more, index = orjson.loads(header)
        page = cls(context, cursors, more=more)
        start = 0
        for length, created_us, log_id in index:
            page.rows.append(rows[start : start + length])
            page.positions.append(Position(EPOCH + created_us * MICROSECOND, log_id))
            start += length
        return page


@dataclass(frozen=True, slots=True)
class Search:
    """A search as asked: the query text, the time range as written, the order. Its cursors
    belong to exactly these (a relative `since` moves on from page to page, as it should)."""

    q: str | None
    since: str | None = None
    until: str | None = None
    ascending: bool = False

    @property
    def context(self) -> str:
        order = "asc" if self.ascending else "desc"
        return "\x00".join(("search", self.q or "", self.since or "", self.until or "", order))

    def digest(self, *, limit: int, cursor: str | None, device_prefix: str | None) -> str:
        """What names one page of it in the cache."""
        page = "\x00".join((self.context, str(limit), cursor or "", device_prefix or "\x00"))
        return hashlib.blake2b(page.encode(), digest_size=16).hexdigest()


class LogQuery:
    def __init__(
        self,
        store: LogStore,
        *,
        cursors: Cursors,
        stats_ttl: timedelta,
        max_response_bytes: int,
        query_timeout: timedelta,
        cache: QueryCache | None = None,
    ) -> None:
        self.store = store
        self.query_timeout = query_timeout.total_seconds()
        self.cursors = cursors
        self.stats_ttl = stats_ttl
        self.max_response_bytes = max_response_bytes
        self.cache = cache
        self._stats: Stats | None = None
        self._stats_expire = 0.0
        self._stats_lock = asyncio.Lock()

    async def latest(self, device_id: str, *, limit: int, cursor: str | None = None) -> Page:
        if cursor is not None:
            after = self.cursors.decode(device_id, cursor)
            return await self._read(device_id, of_device(device_id), limit=limit, after=after)
        if self.cache is None:
            return await self._read(device_id, of_device(device_id), limit=limit)
        cached = cached_limit(limit)
        tag, answer = await self.cache.device_logs(device_id, cached)
        if answer is not None:
            return Page.decoded(device_id, self.cursors, answer).first(limit, source="cache")
        # A cached answer lives until the device's next commit: it must come from the primary,
        # or a lagging replica's answer would hide stored logs for the whole TTL.
        page = await self._read(device_id, of_device(device_id), limit=cached, replicas=False)
        if self.cache.keeps(page.size):
            await self.cache.keep_device_logs(device_id, cached, tag=tag, answer=page.encoded())
        return page.first(limit, source="database")

    async def search(
        self, search: Search, *, limit: int, cursor: str | None, device_prefix: str | None
    ) -> Page:
        """The logs `search` finds, `limit` at most, after `cursor`; only devices starting
        with `device_prefix` when the reader is bound to one."""
        started = time.perf_counter()
        plan = parse(search.q)
        if device_prefix is not None:
            plan = conjoin(plan, Device(device_prefix, prefix=True))
        since, until = time_range(search.since, search.until)
        after = None if cursor is None else self.cursors.decode(search.context, cursor)
        selection = Selection(
            plan,
            since=since,
            until=until,
            ascending=search.ascending,
            timeout=self.query_timeout,
        )
        days = None if self.cache is None else closed_days(search.since, search.until)
        if self.cache is None or days is None:
            page = await self._read(search.context, selection, limit=limit, after=after)
        else:
            digest = search.digest(limit=limit, cursor=cursor, device_prefix=device_prefix)
            tag, answer = await self.cache.of_days("search", digest, days)
            if answer is not None:
                page = Page.decoded(search.context, self.cursors, answer)
            else:
                # Kept until one of its days gets a log: read from the primary, as `latest`.
                page = await self._read(
                    search.context, selection, limit=limit, after=after, replicas=False
                )
                if self.cache.keeps(page.size):
                    await self.cache.keep_of_days("search", digest, tag=tag, answer=page.encoded())
        page.took_ms = round((time.perf_counter() - started) * 1000)
        return page

    async def _read(
        self,
        context: str,
        selection: Selection,
        *,
        limit: int,
        after: Position | None = None,
        replicas: bool = True,
    ) -> Page:
        """Render the store's logs until `limit`, or until the next would pass the bound."""
        budget = self.max_response_bytes - ENVELOPE_BYTES
        found = await self.store.page(
            selection, limit=limit, after=after, max_bytes=budget, replicas=replicas
        )
        page = Page(context, self.cursors, more=found.more)
        spent = 0
        # Each stored row is let go of once rendered: never all of them twice over.
        logs = found.logs[::-1]
        del found
        while logs:
            log = logs.pop()
            if page.rows and spent + len(log.log_data) + len(log.message) > budget:
                page.more = True  # it cannot fit: not even rendered
                break
            row = render_log(log)
            if page.rows and spent + len(row) + 1 > budget:
                page.more = True
                break
            page.rows.append(row)
            page.positions.append(log.position)
            spent += len(row) + 1
        return page

    async def stats(self) -> Stats:
        if self.cache is None:
            return await self._stats_in_process()
        answer = await self.cache.stats()
        if answer is not None:
            return Stats.model_validate_json(answer)
        stats = await self._count()
        await self.cache.keep_stats(stats.model_dump_json().encode())
        return stats

    async def _stats_in_process(self) -> Stats:
        async with self._stats_lock:
            if self._stats is None or time.monotonic() >= self._stats_expire:
                self._stats = await self._count()
                self._stats_expire = time.monotonic() + self.stats_ttl.total_seconds()
            return self._stats

    async def _count(self) -> Stats:
        counts = await self.store.counts()
        return Stats(
            total_logs=counts.total,
            logs_by_level=counts.by_level,
            recent_devices=counts.recent_devices,
            generated_at=datetime.now(UTC),
            max_age_s=int(self.stats_ttl.total_seconds()),
        )
