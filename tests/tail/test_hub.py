"""The hub: one window of the newest logs shared by every tail, a cap, and one reader."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from fleetlog.search.grammar import parse
from fleetlog.search.matcher import LogFields, predicate
from fleetlog.search.plan import Everything
from fleetlog.store.engine import create_store_engine
from fleetlog.store.sqlite_writer import SqliteWriter
from fleetlog.tail.events import Dropped, Heartbeat, TailEvent
from fleetlog.tail.hub import Subscription, TailHub, TooManyTails, Window
from fleetlog.tail.store import StoreSource
from tests.fixtures.pipeline import make_record, wait_for

NOW = datetime.now(UTC)


def event(number: int, level: str = "INFO") -> TailEvent:
    fields = LogFields(device_id="d1", log_level=level, message=f"m{number}", log_data={})
    return TailEvent(
        id=str(number),
        lane=0,
        place=(number,),
        fields=fields,
        log_id=number,
        created_at=NOW,
        received_at=NOW,
    )


def hub_of(window: Window, *subscriptions: Subscription) -> TailHub:
    """A hub over `window` with these tails, whose reader never runs (nor reads its source)."""
    source = StoreSource(create_async_engine("sqlite+aiosqlite://"), interval=1.0)
    hub = TailHub(source, max_tails=10, buffer=window.capacity, heartbeat=1, retry_after=1)
    hub.window = window
    hub.subscriptions.update(subscriptions)
    return hub


async def take(items: AsyncIterator[Any], n: int) -> list[Any]:
    return [await anext(items) for _ in range(n)]


class TestWindow:
    async def test_a_tail_behind_the_window_is_told_how_many_matching_logs_it_missed(self):
        window = Window(4)
        errors = Subscription(predicate(parse("level:error")), window=window, heartbeat=1)
        hub = hub_of(window, errors)
        hub.publish([event(1, "ERROR"), event(2), event(3, "ERROR")])
        hub.publish([event(4), event(5, "ERROR"), event(6, "ERROR")])
        assert [each.fields.message for each in window.events] == ["m3", "m4", "m5", "m6"]
        found = await take(errors.items(), 4)
        assert found[0] == Dropped(1)
        assert [each.fields.message for each in found[1:]] == ["m3", "m5", "m6"]

    async def test_the_last_read_is_kept_whole_for_a_tail_that_keeps_up(self):
        window = Window(2)
        everything = Subscription(predicate(Everything()), window=window, heartbeat=1)
        hub = hub_of(window, everything)
        hub.publish([event(number) for number in range(5)])
        assert len(window.events) == 5
        found = await take(everything.items(), 5)
        assert [each.id for each in found] == ["0", "1", "2", "3", "4"]
        hub.publish([event(5)])
        assert [each.id for each in window.events] == ["4", "5"]
        assert [each.id for each in await take(everything.items(), 1)] == ["5"]

    async def test_an_idle_tail_sends_heartbeats(self):
        idle = Subscription(predicate(Everything()), window=Window(2), heartbeat=0.01)
        assert await take(idle.items(), 2) == [Heartbeat(), Heartbeat()]


@pytest.fixture
async def hub(settings) -> AsyncIterator[TailHub]:
    engine = create_store_engine(settings)
    opened = TailHub(
        StoreSource(engine, interval=0.02), max_tails=2, buffer=100, heartbeat=5, retry_after=3
    )
    yield opened
    await opened.close()
    await engine.dispose()


class TestReader:
    async def test_past_the_cap_a_tail_is_refused_and_a_closed_one_frees_its_slot(self, hub):
        async with hub.subscribe(Everything()), hub.subscribe(Everything()):
            with pytest.raises(TooManyTails) as refused:
                async with hub.subscribe(Everything()):
                    pass
            assert refused.value.headers == {"Retry-After": "3"}
        assert hub.open == 0
        async with hub.subscribe(Everything()):
            assert hub.open == 1

    async def test_one_reader_serves_every_tail_and_stops_with_the_last(self, hub, settings):
        writer = SqliteWriter(settings.sqlite_path, synchronous="NORMAL")
        async with hub.subscribe(parse("m1")) as first, hub.subscribe(Everything()) as second:
            assert hub.reading
            await writer.insert_batch([make_record(message=f"m{i}") for i in range(3)])
            assert [event.id for event in await take(first.items(), 1)] == ["2"]
            assert [event.id for event in await take(second.items(), 3)] == ["1", "2", "3"]
        await writer.close()

        async def stopped() -> bool:
            return not hub.reading

        await wait_for(stopped, what="the reader to stop", within=5.0)
        assert not hub.window.events

    async def test_a_resume_replays_from_the_store_then_goes_on_live(self, hub, settings):
        writer = SqliteWriter(settings.sqlite_path, synchronous="NORMAL")
        await writer.insert_batch([make_record(message=f"m{i}") for i in range(4)])
        async with hub.subscribe(Everything(), after=hub.resume_point("2")) as tail:
            await writer.insert_batch([make_record(message="m4")])
            found = await take(tail.items(), 3)
        await writer.close()
        assert [event.id for event in found] == ["3", "4", "5"]

    async def test_a_resume_from_long_ago_skips_what_it_would_not_replay(self, settings):
        engine = create_store_engine(settings)
        source = StoreSource(engine, interval=0.02, page=2, max_replay=3)
        writer = SqliteWriter(settings.sqlite_path, synchronous="NORMAL")
        await writer.insert_batch([make_record(message=f"m{i}") for i in range(10)])
        await writer.close()
        replayed: list[Any] = [item async for item in source.replay(((2,),), ((10,),))]
        await engine.dispose()
        assert replayed[0] == Dropped(5)
        assert [item.id for item in replayed[1:]] == ["8", "9", "10"]
