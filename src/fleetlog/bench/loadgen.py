"""The load generator: processes of keep-alive connections sending pre-encoded requests.

Each load process owns every `processes`-th request of the run and a share of the connections,
frames its requests before the clock starts (or on demand in a `--duration` run, where their
number is not known), and reports back its latencies, answers by status, failed requests and
its own CPU time. Closed loop: a connection sends its next request as soon as it has an answer,
and latency runs from the write. Open loop (`rate`): request k is due at t0 + k / rate whatever
the server does; a due request waits for a free connection, and latency runs from the time it
was due, so a slow server cannot hide its queue (no coordinated omission).
"""

import asyncio
import contextlib
import ctypes
import math
import multiprocessing
import time
import traceback
from array import array
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event
from typing import Any, Protocol

import uvloop

from fleetlog.bench.http import Connection, frame_request

# Logs answered so far, one slot per load process, shared with the parent's progress bar.
Counters = ctypes.Array[Any]

WATCH_INTERVAL_S = 1.0
POLL_INTERVAL_S = 0.1
# uvloop keeps timers in whole milliseconds: a shorter wait would wake the loop in a busy spin.
MIN_TICK_S = 0.001
MAX_FRUITLESS_CONNECTIONS = 20
# Answers after which a request is sent again when asked (`retry_refused_s`): the backlog is
# full (503), or, with Idempotency-Keys, a request with its key is still in flight (409).
RETRIED_STATUSES = frozenset({503, 409})
# With Idempotency-Keys, how long a lost server is waited for (a restart) before giving up.
RECONNECT_FOR_S = 60.0
RECONNECT_PAUSE_S = 0.2


class LoadError(Exception):
    """The load could not be generated (server unreachable, a load process failed)."""


class Bodies(Protocol):
    """What a load sends: numbered request bodies (a `Workload`, or the query bench's corpus).
    Load processes get a pickled copy, so a body must depend only on its number."""

    @property
    def path(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def gzip(self) -> bool: ...

    @property
    def batch(self) -> int: ...

    def log_range(self, request: int) -> range: ...

    def body(self, request: int) -> bytes: ...


@dataclass(frozen=True, kw_only=True)
class LoadPlan:
    """How to load the server; `requests` None means until `duration` seconds have passed.
    Known requests are framed before the clock starts, unless `preframe` is off (a load too
    big to hold in memory)."""

    host: str
    port: int
    workload: Bodies
    connections: int
    processes: int
    requests: int | None
    duration: float | None
    rate: float | None
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0
    preframe: bool = True
    # Seconds to wait before sending a request answered 503 again on its connection, as a
    # shipper honouring Retry-After would; None: a 503 is a failed request.
    retry_refused_s: float | None = None
    # Each request's Idempotency-Key is `"<this>-<request number>"`; a request whose connection
    # was lost is then sent again with its key, as is one answered 409. None: no keys.
    idempotency_keys: str | None = None


@dataclass(kw_only=True)
class ShardReport:
    """What one load process did; `failed` holds the run-wide numbers of requests without 2xx."""

    sent: int
    failed: list[int]
    latencies: "array[float]"
    statuses: dict[str, int]
    logs_acked: int
    first_send: float
    last_answer: float
    cpu_s: float
    retried: int = 0


@dataclass(kw_only=True)
class LoadResult:
    shards: list[ShardReport]
    parent_cpu_s: float

    @property
    def logs_acked(self) -> int:
        return sum(shard.logs_acked for shard in self.shards)

    @property
    def span(self) -> tuple[float, float]:
        """(first send, last answer) of the whole load, on the monotonic clock."""
        first = min(shard.first_send for shard in self.shards)
        return first, max(shard.last_answer for shard in self.shards)

    def refused(self) -> dict[str, int]:
        """Requests without a 2xx, by status (or `connection`, `timeout`)."""
        counts: Counter[str] = Counter()
        for shard in self.shards:
            counts.update({k: n for k, n in shard.statuses.items() if not k.startswith("2")})
        return dict(counts)


class ShardRequests:
    """The requests of one load process: every `processes`-th of the run, framed, in order."""

    def __init__(self, plan: LoadPlan, shard: int) -> None:
        self.workload = plan.workload
        self.shard = shard
        self.processes = plan.processes
        self.host = f"{plan.host}:{plan.port}"
        self.keys = plan.idempotency_keys
        self.headers = [("Content-Type", plan.workload.content_type), *plan.headers]
        if plan.workload.gzip:
            self.headers.append(("Content-Encoding", "gzip"))
        total = plan.requests
        self.limit = None if total is None else len(range(shard, total, plan.processes))
        framed = (self.limit or 0) if plan.preframe else 0
        self.framed = [self.frame(k) for k in range(framed)]

    def number(self, k: int) -> int:
        """The run-wide number of this process's k-th request."""
        return k * self.processes + self.shard

    def data(self, k: int) -> bytes:
        return self.framed[k] if k < len(self.framed) else self.frame(k)

    def logs(self, k: int) -> int:
        return len(self.workload.log_range(self.number(k)))

    def frame(self, k: int) -> bytes:
        number = self.number(k)
        body = self.workload.body(number)
        headers = self.headers
        if self.keys is not None:
            headers = [*headers, ("Idempotency-Key", f'"{self.keys}-{number}"')]
        return frame_request(host=self.host, path=self.workload.path, body=body, headers=headers)


class Driver:
    """Feeds one process's connections and keeps the score; the `Listener` of its connections."""

    def __init__(self, plan: LoadPlan, requests: ShardRequests, progress: Callable[[int], None]):
        self.loop = asyncio.get_running_loop()
        self.plan = plan
        self.requests = requests
        self.progress = progress
        self.rate = plan.rate / plan.processes if plan.rate else None
        self.quota = requests.limit
        if self.rate is not None and plan.duration is not None:
            self.quota = math.ceil(plan.duration * self.rate)
        self.next = 0
        self.in_flight = 0
        self.t0 = self.deadline = math.inf
        self.ticking = False
        self.connections: set[Connection] = set()
        self.idle: deque[Connection] = deque()
        self.backlog: deque[tuple[int, float | None]] = deque()
        self.reconnecting: set[asyncio.Task[None]] = set()
        self.latencies: array[float] = array("d")
        self.statuses: Counter[str] = Counter()
        self.failed: list[int] = []
        self.retried = 0
        self.logs_acked = 0
        self.last_answer = 0.0
        self.fruitless = 0  # connections lost in a row without a single answer
        self.fruitless_since = 0.0  # when the first of them was lost
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.watcher: asyncio.TimerHandle | None = None

    async def connect(self) -> Connection:
        _, connection = await self.loop.create_connection(
            lambda: Connection(self), self.plan.host, self.plan.port
        )
        self.connections.add(connection)
        return connection

    async def run(self, connections: Sequence[Connection]) -> None:
        self.t0 = time.monotonic()
        if self.plan.duration is not None:
            self.deadline = self.t0 + self.plan.duration
        self.watch()
        try:
            if self.rate is None:
                for connection in connections:
                    self.feed(connection)
            else:
                self.idle.extend(connections)
                self.ticking = True
                self.tick()
            await self.done
        finally:
            if self.watcher is not None:
                self.watcher.cancel()
            for task in self.reconnecting:
                task.cancel()

    def take(self) -> tuple[int, float | None] | None:
        """The next request to send and when it was due (None in closed loop), if any."""
        if self.backlog:
            return self.backlog.popleft()
        if self.rate is not None or self.next == self.quota or time.monotonic() >= self.deadline:
            return None
        self.next += 1
        return self.next - 1, None

    def feed(self, connection: Connection) -> None:
        job = self.take() if connection.transport is not None else None
        if job is None:
            self.idle.append(connection)
            self.finish_if_done()
            return
        k, due = job
        data = self.requests.data(k)
        connection.send(k, data, time.monotonic() if due is None else due)
        self.in_flight += 1

    def tick(self) -> None:
        """Open loop: queue every request due by now, hand them to idle connections."""
        assert self.rate is not None
        assert self.quota is not None
        now = time.monotonic()
        due = min(int((now - self.t0) * self.rate) + 1, self.quota)
        while self.next < due:
            self.backlog.append((self.next, self.t0 + self.next / self.rate))
            self.next += 1
        while self.backlog and self.idle:
            self.feed(self.idle.popleft())
        if self.next < self.quota:
            wait_s = max(self.t0 + self.next / self.rate - time.monotonic(), MIN_TICK_S)
            self.loop.call_later(wait_s, self.tick)
        else:
            self.ticking = False
            self.finish_if_done()

    def answered(self, connection: Connection, request: int, status: int) -> None:
        retry_s = self.plan.retry_refused_s
        if status in RETRIED_STATUSES and retry_s is not None:
            # Still in flight: the same connection sends it again after the pause.
            self.retried += 1
            self.loop.call_later(retry_s, self.resend, connection, request)
            return
        now = time.monotonic()
        self.in_flight -= 1
        self.last_answer = now
        self.latencies.append(now - connection.started)
        self.statuses[str(status)] += 1
        logs = self.requests.logs(request)
        if 200 <= status < 300:
            self.logs_acked += logs
        else:
            self.failed.append(self.requests.number(request))
        self.progress(logs)
        self.feed(connection)

    def resend(self, connection: Connection, request: int) -> None:
        if connection.transport is not None:
            connection.send(request, self.requests.data(request), time.monotonic())
            return
        # The server closed the connection after its 503: the next free one sends it.
        self.in_flight -= 1
        self.backlog.append((request, None))
        if self.idle:
            self.feed(self.idle.popleft())

    def lost(self, connection: Connection) -> None:
        self.connections.discard(connection)
        with contextlib.suppress(ValueError):
            self.idle.remove(connection)
        if self.done.done():
            return
        if connection.request >= 0 and self.plan.idempotency_keys is not None:
            # Its key makes sending it again safe, whether or not the server stored it.
            self.in_flight -= 1
            self.retried += 1
            self.backlog.append((connection.request, None))
        elif connection.request >= 0:
            self.in_flight -= 1
            self.statuses["timeout" if connection.timed_out else "connection"] += 1
            self.failed.append(self.requests.number(connection.request))
            self.progress(self.requests.logs(connection.request))
        self.fruitless = 0 if connection.answers else self.fruitless + 1
        if self.fruitless == 1:
            self.fruitless_since = time.monotonic()
        if self.gave_up():
            self.broken(LoadError("the server keeps closing connections without answering"))
            return
        task = self.loop.create_task(self.replace())
        self.reconnecting.add(task)
        task.add_done_callback(self.reconnecting.discard)
        self.finish_if_done()

    def gave_up(self) -> bool:
        """Too many connections lost without an answer: in a row, or with Idempotency-Keys
        (while a server restarts, it may take connections it never answers) for too long."""
        if self.plan.idempotency_keys is None:
            return self.fruitless > MAX_FRUITLESS_CONNECTIONS
        return self.fruitless > 0 and time.monotonic() - self.fruitless_since > RECONNECT_FOR_S

    async def replace(self) -> None:
        """Open a connection in place of a lost one and put it to work; with Idempotency-Keys,
        trying again for a while, as a server restarting comes back."""
        keep_trying = self.plan.idempotency_keys is not None
        deadline = time.monotonic() + (RECONNECT_FOR_S if keep_trying else 0)
        if keep_trying and self.fruitless:
            await asyncio.sleep(RECONNECT_PAUSE_S)
        while True:
            try:
                connection = await self.connect()
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    self.broken(LoadError(f"cannot reconnect to {self.requests.host}: {exc}"))
                    return
                await asyncio.sleep(RECONNECT_PAUSE_S)
        if self.rate is None:
            self.feed(connection)
        else:
            self.idle.append(connection)

    def broken(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)

    def finish_if_done(self) -> None:
        if self.in_flight or self.backlog or self.ticking or self.done.done():
            return
        if self.rate is None and self.next != self.quota and time.monotonic() < self.deadline:
            return
        self.done.set_result(None)

    def watch(self) -> None:
        """Abort connections whose answer is overdue (counted as timeouts)."""
        overdue = time.monotonic() - self.plan.timeout
        for connection in list(self.connections):
            if connection.request >= 0 and connection.started < overdue:
                connection.timed_out = True
                connection.abort()
        self.watcher = self.loop.call_later(WATCH_INTERVAL_S, self.watch)

    def report(self, cpu_s: float) -> ShardReport:
        return ShardReport(
            sent=self.next,
            failed=self.failed,
            latencies=self.latencies,
            statuses=dict(self.statuses),
            logs_acked=self.logs_acked,
            first_send=self.t0,
            last_answer=self.last_answer,
            cpu_s=cpu_s,
            retried=self.retried,
        )

    def close(self) -> None:
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()


async def drive(
    plan: LoadPlan, shard: int, pipe: Pipe, go: Event, counters: Counters
) -> ShardReport:
    requests = ShardRequests(plan, shard)

    def progress(logs: int) -> None:
        counters[shard] += logs

    driver = Driver(plan, requests, progress)
    share = len(range(shard, plan.connections, plan.processes))
    try:
        connections = [await driver.connect() for _ in range(share)]
    except OSError as exc:
        raise LoadError(f"cannot connect to {requests.host}: {exc}") from None
    pipe.send(("ready", None))
    await asyncio.to_thread(go.wait)
    started = time.process_time()
    try:
        await driver.run(connections)
        return driver.report(time.process_time() - started)
    finally:
        driver.close()
        await asyncio.sleep(0)


def load_process(plan: LoadPlan, shard: int, pipe: Pipe, go: Event, counters: Counters) -> None:
    """A load process's whole life: connect, wait for the start, send, report."""
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(drive(plan, shard, pipe, go, counters))
        pipe.send(("done", report))
    except LoadError as exc:
        pipe.send(("error", str(exc)))
    except Exception:  # the process's outermost frame: the parent shows the traceback
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


def run_load(plan: LoadPlan, on_progress: Callable[[int], None]) -> LoadResult:
    """Start the load processes, release them together, collect their reports."""
    context = multiprocessing.get_context("spawn")
    counters = context.RawArray("q", plan.processes)
    go = context.Event()
    pipes: list[Pipe] = []
    processes = []
    for shard in range(plan.processes):
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=load_process, args=(plan, shard, child_end, go, counters), daemon=True
        )
        process.start()
        child_end.close()
        pipes.append(parent_end)
        processes.append(process)
    try:
        receive_all(pipes, "ready", lambda: None)
        started = time.process_time()
        go.set()
        reports = receive_all(pipes, "done", lambda: on_progress(sum(counters)))
        return LoadResult(shards=reports, parent_cpu_s=time.process_time() - started)
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in pipes:
            pipe.close()


def receive_all(pipes: list[Pipe], expected: str, tick: Callable[[], None]) -> list[Any]:
    """One `expected` message from every pipe, in pipe order; a load process's error raises."""
    messages: dict[int, Any] = {}
    while len(messages) < len(pipes):
        waiting = [pipe for index, pipe in enumerate(pipes) if index not in messages]
        for pipe in wait(waiting, timeout=POLL_INTERVAL_S):
            assert isinstance(pipe, Pipe)
            try:
                kind, payload = pipe.recv()
            except EOFError:
                raise LoadError("a load process exited without a report") from None
            if kind != expected:
                raise LoadError(f"a load process failed: {payload}")
            messages[pipes.index(pipe)] = payload
        tick()
    return [messages[index] for index in range(len(pipes))]
