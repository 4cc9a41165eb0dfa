"""Property-based run of every route in /openapi.json against a real server, as an admin.

No answer may be a 5xx, and every answer must match the schema documented for its status.
"""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    negative_data_rejection,
    positive_data_acceptance,
)

from fleetlog.api.app import create_app
from fleetlog.api.errors import is_ingest_path
from fleetlog.auth.principals import Role
from fleetlog.config import Settings
from tests.fixtures.auth import PASSWORD, add_user, secure_settings
from tests.fixtures.process import running_server

# A name no generated path will hit, so the run cannot delete or lock out its own user.
ADMIN = "schemathesis-admin-3f9c1d2e7a"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    asyncio.run(add_user(secure_settings(data_dir), ADMIN, Role.ADMIN))
    with running_server(data_dir) as running:
        yield running.url


@pytest.fixture(scope="module")
def token(server) -> str:
    answer = httpx.post(f"{server}/api/auth/token", data={"username": ADMIN, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    access: str = answer.json()["access_token"]
    return access


# The document the server publishes, built from the app (it needs no running services).
# Left out everywhere: negative_data_rejection, as fleetlog accepts more than the schema states
# on purpose (level aliases, epoch timestamps); allow_header_conformance, as Starlette's 405
# lists in `Allow` only the methods of the first route matching the path. Left out on every path
# that takes logs: positive_data_acceptance, as the refusal of NUL anywhere in log_data, the
# event-time window and a Loki stream's device label have no JSON Schema form;
# so too with a `cursor`, which only the server can make (a generated one is refused, a 400),
# and with the query language and times, whose grammar a JSON Schema does not state.
LENIENT = [negative_data_rejection, allow_header_conformance]
GRAMMARS = {"cursor", "q", "since", "until"}
# Alert rules hold the query language in their body, and name targets that must exist.
GRAMMAR_PATHS = ("/api/alerts/rules",)
# Loki push's protobuf body is bytes (a snappy block of a PushRequest): sent as generated.
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
# The live tail is left out: an event stream never ends (tests/api/test_tail.py covers it).
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi()).exclude(
    path="/api/tail"
)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_route(case, server, token):
    case.call_and_validate(
        base_url=server,
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[
            *LENIENT,
            *([positive_data_acceptance] if is_ingest_path(case.path) else []),
            *([positive_data_acceptance] if GRAMMARS & set(case.query or {}) else []),
            *([positive_data_acceptance] if case.path.startswith(GRAMMAR_PATHS) else []),
        ],
    )
