"""Alerts evaluated on both stores with real Redis, delivered by dramatiq to a real local
receiver: once per episode, through evaluator handovers, retried, dead-lettered."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from fleetlog.alerts.jobs_view import JobsView
from fleetlog.alerts.ledger import StaleFence
from fleetlog.keys import Keys
from tests.alerts.receiver import receiving
from tests.alerts.rig import AlertRig, alert_rig
from tests.fixtures.pipeline import make_record, wait_for

pytest_plugins = ["tests.fixtures.stores"]


@pytest.fixture
async def rig(store_under_test, redis_url) -> AsyncIterator[AlertRig]:
    async with alert_rig(store_under_test, redis_url) as started:
        yield started


ERRORS = {"query": "level>=error", "window": "5m", "threshold": 2, "group_by": "device"}


async def add_errors(rig: AlertRig, store_under_test, device: str, n: int = 3) -> None:
    """`n` errors of `device`, at the rig's time (the rollups count them in its minute)."""
    records = [
        make_record(device_id=device, level="ERROR", ts=rig.now, received_at=rig.now)
        for _ in range(n)
    ]
    await store_under_test.add(records)


async def settle(rig: AlertRig, receiver, n: int) -> None:
    """Until the receiver got `n` requests and no delivery is left pending."""

    async def done() -> bool:
        return receiver.count() >= n and await rig.deliveries("pending") == 0

    await wait_for(done, what=f"{n} webhook deliveries")


async def test_an_alert_fires_once_per_episode_and_resolves(rig, store_under_test):
    with receiving() as receiver:
        secret = await rig.target(receiver.url)
        await rig.rule(name="errors", **ERRORS)
        await add_errors(rig, store_under_test, "pump-1")
        await add_errors(rig, store_under_test, "pump-2", n=2)
        evaluator = rig.evaluator("a")
        for _ in range(3):
            assert await evaluator.round()
        await settle(rig, receiver, 1)
        assert await rig.notifications() == [("firing", "pump-1")]

        rig.now += timedelta(minutes=6)
        for _ in range(3):
            assert await evaluator.round()
        await settle(rig, receiver, 2)
        assert await rig.notifications() == [("firing", "pump-1"), ("resolved", "pump-1")]

    firing, resolved = receiver.received
    assert all(each.signed_by(secret) for each in receiver.received)
    assert firing.key != resolved.key
    body = firing.json
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "ops"
    assert body["groupLabels"] == {"alertname": "errors"}
    assert body["commonLabels"] == {"alertname": "errors", "device": "pump-1"}
    alert = body["alerts"][0]
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["annotations"]["value"] == "3"
    assert resolved.json["alerts"][0]["fingerprint"] == alert["fingerprint"]
    assert resolved.json["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert await rig.deliveries("delivered") == 2


async def test_for_holds_an_alert_pending_first(rig, store_under_test):
    with receiving() as receiver:
        await rig.target(receiver.url, format="slack")
        await rig.rule(name="errors", **ERRORS, **{"for": "2m"})
        await add_errors(rig, store_under_test, "pump-1")
        evaluator = rig.evaluator("a")
        await evaluator.round()
        rig.now += timedelta(minutes=1)
        await evaluator.round()
        assert await rig.notifications() == []
        states = await rig.store.states()
        assert [(each.group, each.state) for each in states] == [("pump-1", "pending")]
        rig.now += timedelta(minutes=1)
        await evaluator.round()
        await settle(rig, receiver, 1)
    assert receiver.received[0].json == {
        "text": "[FIRING] errors pump-1: 3 logs matching `level>=error` in 5 min for pump-1 (> 2)"
    }


async def test_a_stale_evaluator_is_refused_after_a_handover(rig, store_under_test):
    with receiving() as receiver:
        await rig.target(receiver.url)
        await rig.rule(name="errors", **ERRORS)
        stale, fresh = rig.evaluator("stale"), rig.evaluator("fresh")
        token = await stale.lock.acquire()
        assert token is not None
        await add_errors(rig, store_under_test, "pump-1")
        # The stale holder stalls past its lock's expiry; another takes the lock.
        await rig.redis.delete(Keys(rig.settings.redis_namespace).alert_lock())
        assert await fresh.round()
        await settle(rig, receiver, 1)

        with pytest.raises(StaleFence):
            await stale.evaluate(token)
        assert not await stale.round()
        await stale.dispatch(await fresh.lock.acquire() or 0)
        assert await rig.notifications() == [("firing", "pump-1")]
    assert receiver.count() == 1


async def test_racing_evaluators_notify_each_transition_once(rig, store_under_test):
    keys = Keys(rig.settings.redis_namespace)
    with receiving() as receiver:
        await rig.target(receiver.url)
        await rig.rule(name="errors", **ERRORS)
        await add_errors(rig, store_under_test, "pump-1")
        evaluators = [rig.evaluator(f"e{n}", ttl=0.2, interval=0.01) for n in range(3)]
        tasks = [asyncio.create_task(each.run()) for each in evaluators]

        async def handovers(rounds: int) -> None:
            """Take the lock from its holder, again and again, as expiries would."""
            for _ in range(rounds):
                await rig.redis.delete(keys.alert_lock())
                await asyncio.sleep(0.02)

        await handovers(25)
        await settle(rig, receiver, 1)
        rig.now += timedelta(minutes=6)
        await handovers(25)
        await settle(rig, receiver, 2)
        await handovers(10)
        for evaluator in evaluators:
            evaluator.stop()
        await asyncio.gather(*tasks)
    assert await rig.notifications() == [("firing", "pump-1"), ("resolved", "pump-1")]
    assert len(receiver.received) == len(set(receiver.keys())) == 2
    assert await rig.ledger.fence() > 10, "the lock changed hands"


async def test_a_silence_rule_fires_for_each_device_that_stops_sending(rig, store_under_test):
    with receiving() as receiver:
        await rig.target(receiver.url)
        await rig.rule(name="pumps-silent", kind="silence", query="device:pump-*", window="1m")
        start = rig.now
        await store_under_test.add(
            [
                make_record(device_id=device, ts=start, received_at=start)
                for device in ("pump-1", "pump-2", "cam-1")
            ]
        )
        evaluator = rig.evaluator("a")
        await evaluator.round()
        assert await rig.notifications() == []

        rig.now = start + timedelta(minutes=2)
        await evaluator.round()
        await settle(rig, receiver, 2)
        assert sorted(await rig.notifications()) == [("firing", "pump-1"), ("firing", "pump-2")]

        later = start + timedelta(seconds=90)
        await store_under_test.add([make_record(device_id="pump-1", ts=later, received_at=later)])
        rig.now = later + timedelta(seconds=10)
        await evaluator.round()
        await settle(rig, receiver, 3)
    assert (await rig.notifications())[-1] == ("resolved", "pump-1")
    assert receiver.received[-1].json["commonLabels"] == {
        "alertname": "pumps-silent",
        "device": "pump-1",
    }


async def test_a_failing_receiver_is_retried_with_the_same_key_and_body(rig, store_under_test):
    with receiving(fail_first=2) as receiver:
        secret = await rig.target(receiver.url)
        await rig.rule(name="errors", **ERRORS)
        await add_errors(rig, store_under_test, "pump-1")
        await rig.evaluator("a").round()

        async def delivered() -> bool:
            return await rig.deliveries("delivered") == 1

        await wait_for(delivered, what="the delivery to succeed on its third attempt")
    assert receiver.count() == 3
    assert len(set(receiver.keys())) == 1
    assert len({each.body for each in receiver.received}) == 1
    assert all(each.signed_by(secret) for each in receiver.received)
    history = await rig.store.history(limit=10)
    assert [(each.status, each.attempts) for each in history[0].deliveries] == [("delivered", 3)]


async def test_a_receiver_down_for_good_ends_in_the_dead_letters(store_under_test, redis_url):
    async with alert_rig(store_under_test, redis_url, alert_max_retries=2) as rig:
        with receiving(always=503) as receiver:
            await rig.target(receiver.url)
            await rig.rule(name="errors", **ERRORS)
            await add_errors(rig, store_under_test, "pump-1")
            await rig.evaluator("a").round()
            view = JobsView(rig.redis, keys=Keys(rig.settings.redis_namespace))

            async def dead() -> bool:
                return (await view.queues()).queues[0].dead == 1

            await wait_for(dead, what="the job to be dead-lettered")
        assert receiver.count() == 3
        assert await rig.deliveries("dead") == 1
        queue = (await view.queues()).queues[0]
        assert queue.last_dead[0].actor == "deliver_webhook"
        assert queue.last_dead[0].retries == 2
        history = await rig.store.history(limit=10)
        delivery = history[0].deliveries[0]
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("dead", 3, "HTTP 503")
