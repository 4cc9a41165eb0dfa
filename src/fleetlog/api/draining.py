"""What a server process does the moment it is asked to stop, before uvicorn closes its
listener and waits for the requests in flight (up to FLEETLOG_SHUTDOWN_TIMEOUT): /ready
answers 503, so that a balancer polling it stops sending, and live tails end, since their
streams never end on their own and would hold the shutdown for its whole bound (a client
resumes elsewhere with Last-Event-ID)."""

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Run `callback` in the event loop on SIGTERM or SIGINT, then hand the signal on to the
    handler there before (uvicorn's, which starts the graceful shutdown)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    before: dict[int, object] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback)
        handler = before[signum]
        if callable(handler):
            handler(signum, frame)
            return
        signal.signal(signum, handler)  # type: ignore[arg-type]
        signal.raise_signal(signum)

    for stop in STOP_SIGNALS:
        before[stop] = signal.signal(stop, handle)
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
