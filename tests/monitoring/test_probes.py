"""The API process's probes: what /metrics says of its dependencies and its data dir's disk."""

from pathlib import Path

from fastapi import FastAPI

from fleetlog.api.probes import probe
from fleetlog.api.services import open_services
from tests.fixtures.pipeline import pipeline_settings, sample, wait_for
from tests.fixtures.servers import RedisServer


async def test_an_embedded_process_reports_its_parts_up_and_its_disk(app: FastAPI) -> None:
    # The gauges are the process's: an earlier test's probe may have left them at other values.
    async def probed() -> bool:
        return (
            sample("fleetlog_dependency_up", dependency="sqlite") == 1
            and sample("fleetlog_dependency_up", dependency="queue") == 1
            and sample("fleetlog_data_dir_size_bytes") > 0
        )

    await wait_for(probed, what="this app's probe to report SQLite and the queue up")
    assert 0 < sample("fleetlog_data_dir_free_bytes") <= sample("fleetlog_data_dir_size_bytes")


async def test_a_redis_that_stops_answering_is_reported_down(
    fresh_redis: RedisServer, pg_url: str, tmp_path: Path
) -> None:
    settings = pipeline_settings(fresh_redis.url, pg_url, tmp_path)
    async with open_services(settings, secret="s" * 32) as services:
        await probe(services)
        assert sample("fleetlog_dependency_up", dependency="redis") == 1
        fresh_redis.kill()
        await probe(services)
        assert sample("fleetlog_dependency_up", dependency="redis") == 0
        assert sample("fleetlog_dependency_up", dependency="postgres") == 1
