"""Identities and their rights: the scopes of API keys and the roles of people."""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from fleetlog.errors import Forbidden
from fleetlog.ratelimit import Limit


class Scope(StrEnum):
    """What a route needs: writing logs, reading them, or managing keys and users."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


class Role(StrEnum):
    ADMIN = "admin"
    READER = "reader"


KEY_GRANTS: dict[Scope, frozenset[Scope]] = {
    Scope.INGEST: frozenset({Scope.INGEST}),
    Scope.READ: frozenset({Scope.READ}),
    Scope.ADMIN: frozenset(Scope),
}
ROLE_GRANTS: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset(Scope),
    Role.READER: frozenset({Scope.READ}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever a request was authenticated as; `open` when fleetlog runs without credentials."""

    kind: Literal["key", "user", "open"]
    id: int
    name: str
    grants: frozenset[Scope]
    device_prefix: str | None = None
    limit: Limit | None = None

    @property
    def subject(self) -> str:
        """The rate-limit bucket of this identity."""
        return f"{self.kind}:{self.id}"

    def forbidden(self, scope: Scope) -> Forbidden:
        return Forbidden(
            f"{self.kind} {self.name!r} may not {scope.value}",
            detail=[{"rule": "scope", "required": scope.value}],
        )

    def check_devices(self, device_ids: Iterable[str]) -> None:
        """Refuse logs of devices outside this identity's device prefix, if it has one."""
        prefix = self.device_prefix
        if prefix is None:
            return
        for index, device_id in enumerate(device_ids):
            if not device_id.startswith(prefix):
                raise Forbidden(
                    f"this key may only write devices whose id starts with {prefix!r}",
                    detail=[{"index": index, "rule": "device_prefix", "prefix": prefix}],
                )

    def check_device_read(self, device_id: str) -> None:
        """Refuse reading a device outside this identity's device prefix, if it has one."""
        prefix = self.device_prefix
        if prefix is not None and not device_id.startswith(prefix):
            raise Forbidden(
                f"this key may only read devices whose id starts with {prefix!r}",
                detail=[{"field": "device_id", "rule": "device_prefix", "prefix": prefix}],
            )


OPEN = Principal(kind="open", id=0, name="anyone", grants=frozenset(Scope))
