import time

from fleetlog.queue.probes import WRITE_FAILURE_HOLD_S, Cached, failed_recently


class TestCached:
    async def test_reads_once_within_its_period(self):
        reads = []

        async def read():
            reads.append(1)
            return len(reads)

        cached = Cached(read, every=3600)
        assert [await cached.get() for _ in range(3)] == [1, 1, 1]

    async def test_reads_again_once_its_period_passed(self):
        reads = []

        async def read():
            reads.append(1)
            return len(reads)

        cached = Cached(read, every=0)
        assert [await cached.get() for _ in range(3)] == [1, 2, 3]


def test_a_failed_write_counts_for_the_hold_only():
    assert not failed_recently(None)
    assert failed_recently(time.monotonic())
    assert not failed_recently(time.monotonic() - WRITE_FAILURE_HOLD_S - 1)
