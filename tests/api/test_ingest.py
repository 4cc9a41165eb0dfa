from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.records import make_batch, make_log


async def stored(client, device_id="device_001", limit=1000):
    answer = await client.get(f"/api/logs/{device_id}", params={"limit": limit})
    assert answer.status_code == 200
    return answer.json()["data"]


class TestSingleLog:
    async def test_answer_has_the_reference_shape(self, client):
        answer = await client.post("/api/log", json=make_log())
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"status", "message_id", "received_at"}
        assert body["status"] == "queued"
        assert datetime.fromisoformat(body["received_at"]).tzinfo is not None

    async def test_log_is_readable_right_after_the_answer(self, client):
        answer = await client.post("/api/log", json=make_log(message="just now"))
        (row,) = await stored(client)
        assert str(row["id"]) == answer.json()["message_id"]
        assert row["message"] == "just now"
        assert row["log_data"] == {"sequence": 1, "value": 0.5}
        assert row["received_at"] == answer.json()["received_at"]

    async def test_log_data_defaults_to_an_empty_object(self, client):
        await client.post("/api/log", json=make_log(log_data=...))
        await client.post("/api/log", json=make_log(log_data=None))
        assert [row["log_data"] for row in await stored(client)] == [{}, {}]

    async def test_unknown_fields_are_ignored_like_the_reference(self, client):
        answer = await client.post("/api/log", json=make_log(extra="kept out"))
        assert answer.status_code == 200


class TestBatch:
    async def test_answer_lists_one_id_per_log_in_order(self, client):
        answer = await client.post("/api/logs/batch", json=make_batch(5))
        body = answer.json()
        assert answer.status_code == 200
        assert body["status"] == "queued"
        assert body["count"] == 5
        rows = {str(row["id"]): row["message"] for row in await stored(client)}
        assert [rows[i] for i in body["message_ids"]] == [f"log {i}" for i in range(5)]

    async def test_a_thousand_logs_fit_in_one_batch(self, client):
        answer = await client.post("/api/logs/batch", json=make_batch(1000))
        assert answer.status_code == 200
        assert len(await stored(client)) == 1000

    async def test_gzip_body_is_accepted(self, client):
        import gzip
        import json

        body = gzip.compress(json.dumps(make_batch(3)).encode())
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        answer = await client.post("/api/logs/batch", content=body, headers=headers)
        assert answer.status_code == 200
        assert len(await stored(client)) == 3


class TestLevels:
    @pytest.mark.parametrize(
        ("sent", "kept"),
        [
            ("DEBUG", "DEBUG"),
            ("trace", "DEBUG"),
            ("info", "INFO"),
            ("Notice", "INFO"),
            ("warn", "WARNING"),
            ("WARNING", "WARNING"),
            ("err", "ERROR"),
            ("error", "ERROR"),
            ("crit", "CRITICAL"),
            ("fatal", "CRITICAL"),
            (" critical ", "CRITICAL"),
        ],
    )
    async def test_usual_spellings_are_normalised(self, client, sent, kept):
        answer = await client.post("/api/log", json=make_log(log_level=sent))
        assert answer.status_code == 200
        (row,) = await stored(client)
        assert row["log_level"] == kept


# Yesterday at 10:30 UTC: inside the event-time window whenever the tests run.
DAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
EPOCH_S = int(datetime.fromisoformat(f"{DAY}T10:30:00Z").timestamp())


class TestTimestamps:
    @pytest.mark.parametrize(
        ("sent", "kept"),
        [
            (f"{DAY}T10:30:00Z", f"{DAY}T10:30:00Z"),
            (f"{DAY}T12:30:00.250+02:00", f"{DAY}T10:30:00.250000Z"),
            (f"{DAY}T10:30:00", f"{DAY}T10:30:00Z"),
            (EPOCH_S, f"{DAY}T10:30:00Z"),
            (EPOCH_S + 0.5, f"{DAY}T10:30:00.500000Z"),
            (EPOCH_S * 1000 + 123, f"{DAY}T10:30:00.123000Z"),
            (str(EPOCH_S), f"{DAY}T10:30:00Z"),
        ],
    )
    async def test_device_time_is_kept_in_utc(self, client, sent, kept):
        await client.post("/api/log", json=make_log(timestamp=sent))
        (row,) = await stored(client)
        assert row["created_at"] == kept
        assert row["received_at"] != kept

    async def test_without_device_time_the_receive_time_is_the_event_time(self, client):
        before = datetime.now(UTC)
        await client.post("/api/log", json=make_log())
        (row,) = await stored(client)
        assert row["created_at"] == row["received_at"]
        assert datetime.fromisoformat(row["created_at"]) >= before
