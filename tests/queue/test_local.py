import asyncio
from datetime import UTC, datetime

import pytest

from fleetlog.config import Settings
from fleetlog.errors import QueueFull, StoreUnavailable
from fleetlog.metrics import STORE_COMMIT_ROWS
from fleetlog.queue.local import LocalQueue
from fleetlog.records import LogRecord
from fleetlog.store.engine import create_store_engine
from fleetlog.store.logs import LogStore
from fleetlog.store.sqlite_writer import SqliteWriter
from tests.fixtures.app import client_of, migrated, running_app
from tests.fixtures.records import make_batch


def records(n, device_id="d1"):
    now = datetime.now(UTC)
    return [LogRecord(device_id, "INFO", f"m{i}", {}, now, now) for i in range(n)]


def commits():
    return next(
        sample.value
        for metric in STORE_COMMIT_ROWS.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )


def writer_of(settings):
    return SqliteWriter(settings.sqlite_path, synchronous="FULL")


@pytest.fixture
async def store(settings):
    log_store = LogStore(create_store_engine(settings))
    yield log_store
    await log_store.close()


@pytest.fixture
async def queue(settings):
    local = LocalQueue(writer_of(settings), max_rows=1000, max_backlog=100, retry_after=2.0)
    await local.start()
    yield local
    await local.close()


class TestGroupCommit:
    async def test_concurrent_puts_share_commits(self, queue, store):
        before = commits()
        answers = await asyncio.gather(*(queue.put(records(2)) for _ in range(40)))
        assert commits() - before <= 4
        ids = [message_id for answer in answers for message_id in answer]
        assert len(set(ids)) == 80
        assert len((await store.latest("d1", limit=1000)).logs) == 80

    async def test_each_put_gets_its_own_ids_in_order(self, queue, store):
        first, second = await asyncio.gather(queue.put(records(3)), queue.put(records(2)))
        stored = {str(log.id): log.message for log in (await store.latest("d1", limit=10)).logs}
        assert [stored[i] for i in first] == ["m0", "m1", "m2"]
        assert [stored[i] for i in second] == ["m0", "m1"]

    async def test_commits_are_bounded_by_max_rows(self, settings):
        queue = LocalQueue(writer_of(settings), max_rows=10, max_backlog=1000, retry_after=1.0)
        await queue.start()
        before = commits()
        await asyncio.gather(*(queue.put(records(4)) for _ in range(10)))
        await queue.close()
        assert commits() - before >= 4


class TestBackpressure:
    async def test_full_backlog_refuses_with_retry_after(self, queue):
        waiting = asyncio.ensure_future(queue.put(records(80)))
        await asyncio.sleep(0)
        assert await queue.backlog() == 80
        with pytest.raises(QueueFull) as refused:
            await queue.put(records(21))
        assert refused.value.headers == {"Retry-After": "2"}
        assert len(await waiting) == 80
        assert await queue.backlog() == 0

    async def test_batch_over_the_backlog_answers_503(self, tmp_path):
        settings = await migrated(Settings(_env_file=None, data_dir=tmp_path, max_backlog=3))
        async with running_app(settings) as app, client_of(app) as http:
            answer = await http.post("/api/logs/batch", json=make_batch(5))
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["error"] == "backlog_full"
            assert (await http.post("/api/logs/batch", json=make_batch(3))).status_code == 200


class TestFailures:
    async def test_store_failure_fails_the_waiting_puts_and_frees_the_backlog(self, settings):
        (settings.data_dir / "no-schema").mkdir()
        unmigrated = Settings(_env_file=None, data_dir=settings.data_dir / "no-schema")
        queue = LocalQueue(writer_of(unmigrated), max_rows=100, max_backlog=100, retry_after=1.0)
        await queue.start()
        with pytest.raises(StoreUnavailable):
            await queue.put(records(3))
        assert await queue.backlog() == 0
        await queue.close()

    async def test_a_failed_commit_counts_until_a_commit_succeeds(self, settings):
        (settings.data_dir / "late-schema").mkdir()
        late = Settings(_env_file=None, data_dir=settings.data_dir / "late-schema")
        queue = LocalQueue(writer_of(late), max_rows=100, max_backlog=100, retry_after=1.0)
        await queue.start()
        try:
            assert (await queue.writable())["commit"] is True
            with pytest.raises(StoreUnavailable):
                await queue.put(records(1))
            assert (await queue.writable())["commit"] is False
            await migrated(late)
            await queue.put(records(1))
            assert (await queue.writable())["commit"] is True
        finally:
            await queue.close()

    async def test_close_commits_what_was_accepted(self, settings, store):
        queue = LocalQueue(writer_of(settings), max_rows=100, max_backlog=100, retry_after=1.0)
        await queue.start()
        pending = asyncio.ensure_future(queue.put(records(5)))
        await asyncio.sleep(0)
        await queue.close()
        assert len(await pending) == 5
        assert len((await store.latest("d1", limit=10)).logs) == 5

    async def test_closed_queue_refuses(self, queue):
        await queue.close()
        with pytest.raises(StoreUnavailable):
            await queue.put(records(1))


async def test_free_disk_under_the_minimum_is_reported(settings):
    roomy = LocalQueue(writer_of(settings), max_rows=1, max_backlog=1, retry_after=1.0)
    cramped = LocalQueue(
        writer_of(settings), max_rows=1, max_backlog=1, retry_after=1.0, min_free_disk_bytes=2**62
    )
    assert await roomy.writable() == {"commit": True, "disk": True}
    assert await cramped.writable() == {"commit": True, "disk": False}


async def test_a_cancelled_put_is_committed_and_spares_the_others(queue, store):
    cancelled = asyncio.ensure_future(queue.put(records(2, device_id="gone")))
    await asyncio.sleep(0)
    other = asyncio.ensure_future(queue.put(records(3, device_id="stays")))
    cancelled.cancel()
    assert len(await asyncio.wait_for(other, timeout=30)) == 3
    assert cancelled.cancelled()
    assert len((await store.latest("gone", limit=10)).logs) == 2
