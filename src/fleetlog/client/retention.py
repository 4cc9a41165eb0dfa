"""The retention routes over HTTP, for `fleetlog retention` (an admin key or token)."""

from typing import Any

from fleetlog.client.api import ClientError, LogApi, ensure_success


class RetentionApi:
    """The admin retention routes of the server `api` talks to."""

    def __init__(self, api: LogApi) -> None:
        self.api = api

    def rules(self) -> dict[str, Any]:
        return self._call("GET", "/api/retention/rules")

    def add(self, rule: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/api/retention/rules", json=rule)

    def replace(self, rule_id: int, rule: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/api/retention/rules/{rule_id}", json=rule)

    def remove(self, rule_id: int) -> dict[str, Any]:
        return self._call("DELETE", f"/api/retention/rules/{rule_id}")

    def preview(self) -> dict[str, Any]:
        return self._call("GET", "/api/retention/preview")

    def apply(self) -> dict[str, Any]:
        return self._call("POST", "/api/retention/apply")

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        with self.api.translated():
            response = self.api.http.request(method, path, **options)
        ensure_success(response)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ClientError(f"{self.api.url}{path} did not answer a JSON object")
        return answer
