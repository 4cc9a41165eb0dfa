"""What alert rules and webhook targets are, as the API takes and answers them.

A threshold rule counts the logs its query finds over the last `window` (whole minutes, the
current one included) per group, and holds while that count compares true with `threshold`.
A silence rule holds for each device its query names (devices only, as in the fleet view)
that sent nothing for `window`. Either holds `for` long before it fires.
"""

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from fleetlog.auth.credentials import NAME_PATTERN
from fleetlog.config import seconds_or_iso
from fleetlog.records import NUL_FREE, reject_nul
from fleetlog.search.grammar import InvalidQuery, parse
from fleetlog.search.plan import Device, uses_only
from fleetlog.search.times import RELATIVE, UNITS

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Kind = Literal["threshold", "silence"]
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
Grouping = Literal["device", "level"]
Format = Literal["alertmanager", "slack"]
MINUTE = timedelta(minutes=1)
MAX_WINDOW = {"threshold": timedelta(days=1), "silence": timedelta(days=7)}
MAX_FOR = timedelta(days=1)
MAX_TARGETS = 16


def span(value: object) -> object:
    """Durations as `5m`, `2h` or `1d` besides seconds (`300`, `"300"`) and ISO 8601."""
    if isinstance(value, str) and (relative := RELATIVE.fullmatch(value.strip())) is not None:
        amount, unit = relative.groups()
        return timedelta(**{UNITS[unit]: int(amount)})
    return seconds_or_iso(value)


Span = Annotated[timedelta, BeforeValidator(span)]


def searchable(query: str) -> str:
    """The query in the search language, or its rule and position as the field's error."""
    try:
        parse(query)
    except InvalidQuery as exc:
        rule = str(exc.detail[0]["rule"]) if exc.detail else "syntax"
        raise PydanticCustomError(rule, exc.message) from None
    return query


class RuleIn(BaseModel):
    """An alert rule; see the module's docstring and docs/lifecycle.md."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Name
    kind: Kind = "threshold"
    query: Annotated[
        str,
        Field(max_length=4096),
        NUL_FREE,
        AfterValidator(searchable),
    ] = ""
    window: Span = Field(description="Seconds, `5m`, `2h`, or ISO 8601; whole minutes")
    comparison: Comparison = ">"
    threshold: Annotated[int, Field(ge=0, le=2**53)] = 0
    group_by: Grouping | None = None
    for_: Span = Field(timedelta(0), alias="for", description="How long it holds before firing")
    summary: Annotated[str, Field(max_length=512), NUL_FREE] | None = None
    targets: Annotated[list[Name], Field(max_length=MAX_TARGETS)] = Field(default_factory=list)

    @field_validator("query")
    @classmethod
    def watchable(cls, query: str, info: ValidationInfo) -> str:
        if info.data.get("kind") == "silence" and not uses_only(parse(query), (Device,)):
            raise PydanticCustomError("devices_only", "a silence rule watches devices only")
        return query

    @field_validator("window")
    @classmethod
    def whole_minutes(cls, window: timedelta, info: ValidationInfo) -> timedelta:
        if window < MINUTE or window % MINUTE:
            raise PydanticCustomError("whole_minutes", "must be a whole number of minutes")
        longest = MAX_WINDOW[info.data.get("kind", "threshold")]
        if window > longest:
            raise PydanticCustomError(
                "max_window", "must be at most {longest}", {"longest": str(longest)}
            )
        return window

    @field_validator("group_by")
    @classmethod
    def by_device_if_silence(cls, group_by: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "silence" and group_by == "level":
            raise PydanticCustomError("silence_group", "a silence rule groups by device")
        return group_by

    @field_validator("for_")
    @classmethod
    def bounded_for(cls, duration: timedelta) -> timedelta:
        if not timedelta(0) <= duration <= MAX_FOR:
            raise PydanticCustomError("for_range", "must be between 0 and 1 day")
        return duration

    @field_validator("targets")
    @classmethod
    def unique(cls, targets: list[str]) -> list[str]:
        if len(set(targets)) != len(targets):
            raise PydanticCustomError("unique", "names a target twice")
        return targets

    @property
    def grouping(self) -> Grouping | None:
        return "device" if self.kind == "silence" else self.group_by


class RuleOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    name: str
    kind: Kind
    query: str
    window: int = Field(description="Seconds")
    comparison: Comparison | None
    threshold: int | None
    group_by: Grouping | None
    for_: int = Field(alias="for", description="Seconds")
    summary: str | None
    targets: list[str]
    created_at: datetime
    updated_at: datetime


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    url: Annotated[
        str,
        Field(
            max_length=2048,
            pattern=r"^https?://[^/\s]",
            description="http(s), with a host",
            # The schema states both rules (`reject_nul` names its own when a NUL breaks it).
            json_schema_extra={"pattern": r"^https?://[^/\s\x00][^\x00]*$"},
        ),
        AfterValidator(reject_nul),
    ]
    format: Format = Field("alertmanager", description="alertmanager, or slack: `{text}`")


class TargetOut(BaseModel):
    id: int
    name: str
    url: str
    format: Format
    created_at: datetime


class CreatedTargetOut(TargetOut):
    secret: str = Field(description="Signs every delivery; shown this once")


class StateOut(BaseModel):
    rule: str
    group: str = Field(description="The device or level, or '' for an ungrouped rule")
    state: Literal["pending", "firing", "resolved"]
    value: float = Field(description="The count, or a silent device's seconds of silence")
    active_since: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    evaluated_at: datetime


class DeliveryOut(BaseModel):
    target: str
    status: Literal["pending", "retrying", "delivered", "dead"]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class NotificationOut(BaseModel):
    id: int
    key: str = Field(description="The Idempotency-Key every delivery of it carries")
    rule: str
    group: str
    status: Literal["firing", "resolved"]
    value: float
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime
    deliveries: list[DeliveryOut]


class AlertsOut(BaseModel):
    evaluated: bool = Field(description="False when this server has no Redis to evaluate with")
    alerts: list[StateOut] = Field(description="Pending and firing alerts, and resolved ones")
    history: list[NotificationOut] = Field(description="Notifications, newest first")


def rule_values(rule: RuleIn) -> dict[str, Any]:
    """The columns of `alert_rules` a rule sets."""
    threshold = rule.kind == "threshold"
    return {
        "name": rule.name,
        "kind": rule.kind,
        "query": rule.query,
        "window_s": int(rule.window.total_seconds()),
        "comparison": rule.comparison if threshold else None,
        "threshold": rule.threshold if threshold else None,
        "group_by": rule.grouping,
        "for_s": int(rule.for_.total_seconds()),
        "summary": rule.summary,
    }
