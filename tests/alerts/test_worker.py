"""The pipeline: `fleetlog worker` processes evaluate alerts and send their webhooks; a worker
killed and restarted sends nothing twice."""

import signal
from datetime import UTC, datetime

from fleetlog.config import Settings
from tests.alerts.receiver import receiving
from tests.fixtures.app import client_of, running_app
from tests.fixtures.pipeline import wait_for, worker_process
from tests.fixtures.records import make_batch

ALERT_ENV = {
    "FLEETLOG_ALERT_INTERVAL": "0.2",
    "FLEETLOG_QUERY_TIMEOUT": "1",
    "FLEETLOG_ALERT_MIN_BACKOFF": "0.05",
}


async def test_a_killed_worker_restarted_notifies_nothing_twice(pipeline: Settings, tmp_path):
    async with running_app(pipeline) as app, client_of(app) as http:
        with receiving() as receiver:
            target = {"name": "ops", "url": receiver.url}
            assert (await http.post("/api/alerts/targets", json=target)).status_code == 201
            rule = {"name": "errors", "query": "level:error", "window": "5m", "threshold": 2}
            created = await http.post("/api/alerts/rules", json={**rule, "targets": ["ops"]})
            assert created.status_code == 201
            batch = make_batch(3, device_id="pump-1", log_level="ERROR")
            assert (await http.post("/api/logs/batch", json=batch)).status_code == 200

            async def evaluated_after(moment: datetime) -> bool:
                alerts = (await http.get("/api/alerts")).json()["alerts"]
                return bool(alerts) and datetime.fromisoformat(alerts[0]["evaluated_at"]) > moment

            with worker_process(pipeline, tmp_path / "worker-1.log", env=ALERT_ENV) as first:

                async def delivered() -> bool:
                    history = (await http.get("/api/alerts")).json()["history"]
                    return bool(history) and history[0]["deliveries"][0]["status"] == "delivered"

                await wait_for(delivered, what="the firing webhook")
                assert first.signal(signal.SIGKILL) == -signal.SIGKILL
            killed = datetime.now(UTC)
            with worker_process(pipeline, tmp_path / "worker-2.log", env=ALERT_ENV):
                await wait_for(lambda: evaluated_after(killed), what="the new worker to evaluate")
                again = datetime.now(UTC)
                await wait_for(lambda: evaluated_after(again), what="another round")
            history = (await http.get("/api/alerts")).json()["history"]
    assert receiver.count() == 1
    assert [(each["status"], each["deliveries"][0]["status"]) for each in history] == [
        ("firing", "delivered")
    ]
    assert receiver.received[0].json["commonLabels"] == {"alertname": "errors"}
