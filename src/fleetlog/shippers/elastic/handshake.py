"""What Elasticsearch's clients ask before they send, answered so that they go on to `_bulk`.

`GET /` names the version: Beats, Logstash and Vector choose their request format by its major
number (8: no `_type`), and Logstash checks the `X-Elastic-Product` header as elasticsearch-py
does on every answer. Vector's health check is `GET /_cluster/health`; Logstash reads the
license; Beats and Logstash look for their ILM policy, index template and ingest pipelines, and
put them when missing. fleetlog keeps none of these: it says it has none, takes a put as done,
and stores what comes to `_bulk` with the mapping of `documents`, whatever the template says.
"""

import uuid
from typing import Any

from fleetlog import __version__
from fleetlog.config import Settings

PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}
VERSION = "8.17.0"
LUCENE_VERSION = "9.12.0"
CLUSTER_NAME = "fleetlog"
ACKNOWLEDGED = {"acknowledged": True}
# The time the license says it was issued, in epoch milliseconds; it never expires.
LICENSE_ISSUED_MS = 1_735_689_600_000


def cluster_uuid(settings: Settings) -> str:
    """One cluster id for every process of a deployment (they share the Redis namespace)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fleetlog:{settings.redis_namespace}"))


def node_id(settings: Settings) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"fleetlog-node:{settings.instance}").hex[:22]


def banner(settings: Settings) -> dict[str, Any]:
    """The answer of `GET /`, as Elasticsearch gives it; `version.fleetlog` is fleetlog's own."""
    return {
        "name": settings.instance,
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": cluster_uuid(settings),
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_snapshot": False,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
            "fleetlog": __version__,
        },
        "tagline": "You Know, for Search",
    }


def cluster_health() -> dict[str, Any]:
    return {
        "cluster_name": CLUSTER_NAME,
        "status": "green",
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0,
    }


def license_of(settings: Settings) -> dict[str, Any]:
    return {
        "license": {
            "status": "active",
            "uid": cluster_uuid(settings),
            "type": "basic",
            "issue_date": "2025-01-01T00:00:00.000Z",
            "issue_date_in_millis": LICENSE_ISSUED_MS,
            "max_nodes": 1000,
            "max_resource_units": None,
            "issued_to": CLUSTER_NAME,
            "issuer": "elasticsearch",
            "start_date_in_millis": -1,
        }
    }


def xpack(settings: Settings) -> dict[str, Any]:
    """The features Beats look for: ILM available, so they do not refuse to start."""
    on = {"available": True, "enabled": True}
    return {
        "build": {"hash": "", "date": "2025-01-01T00:00:00.000Z"},
        "license": {
            "uid": cluster_uuid(settings),
            "type": "basic",
            "mode": "basic",
            "status": "active",
        },
        "features": {"ilm": on, "monitoring": {"available": True, "enabled": False}},
        "tagline": "for the Elastic Stack",
    }


def nodes(settings: Settings) -> dict[str, Any]:
    node = {
        "name": settings.instance,
        "version": VERSION,
        "build_flavor": "default",
        "roles": ["data", "ingest", "master"],
        "ingest": {"processors": []},
    }
    return {
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": CLUSTER_NAME,
        "nodes": {node_id(settings): node},
    }


def missing(what: str, name: str) -> dict[str, Any]:
    """The 404 body of a setup resource fleetlog does not keep."""
    reason = f"{what} [{name}] missing"
    cause = {"type": "resource_not_found_exception", "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": 404}
