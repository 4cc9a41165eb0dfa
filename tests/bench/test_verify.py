"""The exactly-once audit: lost, duplicated and unacknowledged logs, counted from the rows."""

import sqlite3

from fleetlog.bench.verify import SqliteLogs, audit, verify
from fleetlog.bench.workload import Workload

WORKLOAD = Workload(name="reference", run="feedf00d", devices=2, batch=5, gzip=False)


def row(number, copies=1):
    sequence, device = divmod(number, WORKLOAD.devices)
    return WORKLOAD.device_id(device), sequence, copies


class TestAudit:
    def test_everything_stored_once(self):
        assert audit(WORKLOAD, [range(0, 5), range(5, 10)], [row(n) for n in range(10)]) == (
            0,
            0,
            0,
        )

    def test_missing_rows_of_acknowledged_logs_are_lost(self):
        tally = [row(n) for n in range(10) if n not in (3, 7)]
        assert audit(WORKLOAD, [range(0, 10)], tally) == (2, 0, 0)

    def test_extra_copies_are_duplicates(self):
        tally = [row(0, copies=3), *(row(n) for n in range(1, 5))]
        assert audit(WORKLOAD, [range(0, 5)], tally) == (0, 2, 0)

    def test_rows_of_requests_without_2xx_are_neither_lost_nor_expected(self):
        tally = [row(n) for n in range(7)]
        assert audit(WORKLOAD, [range(0, 5)], tally) == (0, 0, 2)


async def test_verify_reads_the_sqlite_store(tmp_path):
    path = tmp_path / "logs.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE logs (device_id TEXT, log_data JSON)")
        for number in [0, 1, 2, 2, 9]:
            device, sequence, _ = row(number)
            db.execute("INSERT INTO logs VALUES (?, json_object('seq', ?))", (device, sequence))
    db.close()
    store = SqliteLogs(path)
    try:
        delivery = await verify(store, WORKLOAD, [range(0, 5)], settle_s=0.1)
    finally:
        await store.close()
    assert (delivery.lost, delivery.duplicated, delivery.unacknowledged) == (2, 1, 1)
    assert delivery.stored == 4
