"""What the retention routes receive and answer."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from fleetlog.records import NUL_FREE, Level, LogLevel
from fleetlog.retention.archive import ArchivedFile
from fleetlog.retention.report import Report, Tally
from fleetlog.retention.rule_store import StoredRule
from fleetlog.retention.rules import Rule

MAX_DAYS = 36_500
MAX_PREFIX = 128


class RuleIn(BaseModel):
    log_level: Level | None = Field(
        default=None, description="The level the rule keeps (any spelling ingest takes)"
    )
    device_prefix: (
        Annotated[
            str,
            Field(min_length=1, max_length=MAX_PREFIX),
            NUL_FREE,
        ]
        | None
    ) = Field(default=None, description="The devices the rule keeps: ids starting so")
    days: Annotated[int, Field(ge=1, le=MAX_DAYS)] = Field(
        description="Days of event time its logs are kept"
    )

    def rule(self) -> Rule:
        return Rule(
            id=None, log_level=self.log_level, device_prefix=self.device_prefix, days=self.days
        )


class RuleOut(BaseModel):
    id: int | None = Field(description="None for the default taken from FLEETLOG_RETENTION_DAYS")
    log_level: LogLevel | None
    device_prefix: str | None
    days: int
    created_at: datetime | None = None

    @classmethod
    def of(cls, rule: Rule, created_at: datetime | None = None) -> "RuleOut":
        return cls(
            id=rule.id,
            log_level=rule.log_level,
            device_prefix=rule.device_prefix,
            days=rule.days,
            created_at=created_at,
        )

    @classmethod
    def stored(cls, stored: StoredRule) -> "RuleOut":
        return cls.of(stored.rule, stored.created_at)


class RulesOut(BaseModel):
    rules: list[RuleOut] = Field(description="The stored rules, by id")
    effective: list[RuleOut] = Field(
        description="The rules a pass applies, most specific first: the stored ones, and "
        "FLEETLOG_RETENTION_DAYS as the default when no default rule is stored"
    )


class TallyOut(BaseModel):
    rule: RuleOut
    rows: int
    days: int = Field(description="Event days (UTC) the logs are spread over")
    oldest: datetime | None
    newest: datetime | None

    @classmethod
    def of(cls, tally: Tally) -> "TallyOut":
        return cls(
            rule=RuleOut.of(tally.rule),
            rows=tally.rows,
            days=len(tally.days),
            oldest=tally.oldest,
            newest=tally.newest,
        )


class ArchivedOut(BaseModel):
    name: str
    day: str
    rows: int
    bytes: int
    sha256: str

    @classmethod
    def of(cls, file: ArchivedFile) -> "ArchivedOut":
        return cls(
            name=file.name, day=file.day, rows=file.rows, bytes=file.bytes, sha256=file.sha256
        )


class ReportOut(BaseModel):
    at: datetime = Field(description="The time ages were measured from")
    rows: int
    rules: list[TallyOut]
    partitions: list[str] = Field(description="Day partitions dropped whole (PostgreSQL)")
    archived: list[ArchivedOut]

    @classmethod
    def of(cls, report: Report) -> "ReportOut":
        return cls(
            at=report.at,
            rows=report.rows,
            rules=[TallyOut.of(tally) for tally in report.tallies],
            partitions=report.partitions,
            archived=[ArchivedOut.of(file) for file in report.archived],
        )
