"""The load driver against a scripted server: answers by status, dropped connections, timing."""

import asyncio

import pytest

from fleetlog.bench.loadgen import Driver, LoadPlan, ShardRequests
from fleetlog.bench.workload import Workload

WORKLOAD = Workload(name="reference", run="5c21b7ed", devices=4, batch=5, gzip=False)


async def scripted_server(answer, *, close_after=()):
    """A server that reads whole requests and answers `answer(n)` to the n-th: a status, or
    None to drop the connection unanswered; it closes the connection after the answers to
    the requests numbered in `close_after`."""
    received = 0

    async def handle(reader, writer):
        nonlocal received
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                status = answer(received)
                received += 1
                if status is None:
                    return
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 2\r\n\r\n{}" % status)
                if received - 1 in close_after:
                    await writer.drain()
                    return
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def drive(server, *, requests, connections, rate=None, retry_refused_s=None):
    port = server.sockets[0].getsockname()[1]
    plan = LoadPlan(
        host="127.0.0.1",
        port=port,
        workload=WORKLOAD,
        connections=connections,
        processes=1,
        requests=requests,
        duration=None,
        rate=rate,
        retry_refused_s=retry_refused_s,
    )
    answered = []
    driver = Driver(plan, ShardRequests(plan, 0), answered.append)
    live = [await driver.connect() for _ in range(connections)]
    try:
        await asyncio.wait_for(driver.run(live), timeout=30)
    finally:
        driver.close()
    return driver.report(cpu_s=0.0), sum(answered)


async def test_every_request_is_answered_and_counted_by_status():
    server = await scripted_server(lambda n: 503 if n % 4 == 3 else 200)
    async with server:
        report, answered_logs = await drive(server, requests=40, connections=3)
    assert report.sent == 40
    assert report.statuses == {"200": 30, "503": 10}
    assert len(report.failed) == 10
    assert report.logs_acked == 150
    assert answered_logs == 200
    assert len(report.latencies) == 40


async def test_a_dropped_connection_fails_its_request_and_is_replaced():
    server = await scripted_server(lambda n: None if n == 5 else 200)
    async with server:
        report, _ = await drive(server, requests=20, connections=2)
    assert report.statuses == {"200": 19, "connection": 1}
    assert len(report.failed) == 1
    assert report.logs_acked == 95


async def test_a_refused_request_is_sent_again_when_asked():
    server = await scripted_server(lambda n: 503 if n in (2, 3) else 200)
    async with server:
        report, answered_logs = await drive(
            server, requests=10, connections=2, retry_refused_s=0.01
        )
    assert report.statuses == {"200": 10}
    assert report.retried == 2
    assert report.failed == []
    assert report.logs_acked == answered_logs == 50


async def test_a_refused_request_on_a_closed_connection_goes_out_on_another():
    server = await scripted_server(lambda n: 503 if n == 1 else 200, close_after={1})
    async with server:
        report, _ = await drive(server, requests=6, connections=2, retry_refused_s=0.01)
    assert report.statuses == {"200": 6}
    assert report.retried == 1
    assert report.logs_acked == 30


@pytest.mark.parametrize("connections", [1, 4])
async def test_open_loop_sends_on_schedule_and_measures_from_the_due_time(connections):
    server = await scripted_server(lambda n: 200)
    async with server:
        report, _ = await drive(server, requests=20, connections=connections, rate=200.0)
    assert report.statuses == {"200": 20}
    # 20 requests at 200/s are due over 95 ms: the run cannot end sooner.
    assert report.last_answer - report.first_send >= 0.095
