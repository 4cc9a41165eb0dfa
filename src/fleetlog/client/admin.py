"""The admin API (alert rules, targets, jobs) over HTTP, as `fleetlog alerts` calls it."""

from typing import Any

from fleetlog.client.api import LogApi, ensure_success


def call(api: LogApi, method: str, path: str, *, body: Any = None, params: Any = None) -> Any:
    """One request; its JSON answer (None for 204), or a ClientError naming the refusal."""
    with api.translated():
        response = api.http.request(method, path, json=body, params=params)
    ensure_success(response)
    return None if response.status_code == 204 else response.json()
