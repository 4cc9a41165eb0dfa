"""PostgreSQL down under a secured Redis-mode API: known keys keep ingesting, the rest get 503."""

from datetime import timedelta

from fleetlog.auth.principals import Scope
from tests.fixtures.auth import add_key, secure_settings, serving
from tests.fixtures.pipeline import migrate_database
from tests.fixtures.records import make_log


async def test_known_keys_keep_ingesting_while_postgres_is_down(
    fresh_postgres, redis_url, tmp_path
):
    fresh_postgres.create_database("logs")
    url = fresh_postgres.dsn("logs")
    await migrate_database(url)
    settings = secure_settings(
        tmp_path / "data",
        redis_url=redis_url,
        database_url=url,
        auth_cache_ttl=timedelta(milliseconds=1),
    )
    known = await add_key(settings, "known", Scope.INGEST)
    unseen = await add_key(settings, "unseen", Scope.INGEST)
    async with serving(settings) as http:
        assert (await ingest(http, known)).status_code == 200
        fresh_postgres.stop()

        answer = await ingest(http, known)
        assert answer.status_code == 200, answer.text
        refused = await ingest(http, unseen)
        assert refused.status_code == 503
        assert "Retry-After" in refused.headers
        answer = await http.post(
            "/api/auth/token", data={"username": "nobody\x00", "password": "x"}
        )
        assert answer.status_code == 422
        fresh_postgres.start()
        assert (await ingest(http, unseen)).status_code == 200


async def ingest(http, key):
    return await http.post("/api/log", json=make_log(), headers={"X-API-Key": key})
