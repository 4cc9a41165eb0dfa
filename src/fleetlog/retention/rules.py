"""Retention rules and which one governs a log.

A rule names a level, a device prefix, both, or neither (the default rule), and keeps its logs
`days` days of event time. Of the rules that match a log, the one with the longest device
prefix governs it; at equal prefixes (none counts as the empty prefix), one that names the
level beats one that does not. So `DEBUG 2 days`, `test- 1 day` and a default of 30 days keep
a DEBUG log of `test-7` one day, a DEBUG log of `cam-1` two days, and every other log 30 days.
A log no rule matches (no default rule, and FLEETLOG_RETENTION_DAYS unset) is kept for good.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, not_, or_, true

from fleetlog.records import LogLevel
from fleetlog.store.tables import logs


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule; `id` is None for the default taken from FLEETLOG_RETENTION_DAYS."""

    id: int | None
    log_level: LogLevel | None
    device_prefix: str | None
    days: int

    @property
    def specificity(self) -> tuple[int, bool]:
        return len(self.device_prefix or ""), self.log_level is not None

    @property
    def is_default(self) -> bool:
        return self.log_level is None and self.device_prefix is None

    def matches(self, device_id: str, level: str) -> bool:
        if self.log_level is not None and level != self.log_level:
            return False
        return self.device_prefix is None or device_id.startswith(self.device_prefix)

    def cutoff(self, now: datetime) -> datetime:
        """Logs of this rule with an event time before this are due."""
        return now - timedelta(days=self.days)

    def describe(self) -> str:
        named = [
            f"level {self.log_level}" if self.log_level else "",
            f"devices {self.device_prefix}*" if self.device_prefix else "",
        ]
        return " and ".join(part for part in named if part) or "default"


def effective(stored: list[Rule], default_days: int | None) -> list[Rule]:
    """The stored rules, with FLEETLOG_RETENTION_DAYS as the default rule when none is stored;
    most specific first."""
    rules = list(stored)
    if default_days is not None and not any(rule.is_default for rule in rules):
        rules.append(Rule(id=None, log_level=None, device_prefix=None, days=default_days))
    return sorted(rules, key=lambda rule: rule.specificity, reverse=True)


def governing(rules: list[Rule], device_id: str, level: str) -> Rule | None:
    """The rule that governs a log of `device_id` at `level`, if any does."""
    matching = [rule for rule in rules if rule.matches(device_id, level)]
    return max(matching, key=lambda rule: rule.specificity, default=None)


def matched_by(rule: Rule) -> ColumnElement[bool]:
    """The logs `rule` matches, whether or not it governs them."""
    condition: ColumnElement[bool] = true()
    if rule.log_level is not None:
        condition = and_(condition, logs.c.log_level == rule.log_level.value)
    if rule.device_prefix is not None:
        starts = logs.c.device_id.startswith(rule.device_prefix, autoescape=True)
        condition = and_(condition, starts)
    return condition


def overlaps(narrower: Rule, rule: Rule) -> bool:
    """Whether `narrower` (more specific) can match a log `rule` matches."""
    if narrower.log_level and rule.log_level and narrower.log_level != rule.log_level:
        return False
    prefix, longer = rule.device_prefix or "", narrower.device_prefix or ""
    return longer.startswith(prefix)


def governed_by(rule: Rule, rules: list[Rule]) -> ColumnElement[bool]:
    """The logs `rule` governs: it matches them and no more specific rule does."""
    narrower = [
        other for other in rules if other.specificity > rule.specificity and overlaps(other, rule)
    ]
    taken = or_(*(matched_by(other) for other in narrower)) if narrower else None
    return matched_by(rule) if taken is None else and_(matched_by(rule), not_(taken))


def due(rule: Rule, rules: list[Rule], now: datetime) -> ColumnElement[bool]:
    """The logs `rule` governs that are past its age at `now`."""
    return and_(governed_by(rule, rules), logs.c.created_at < rule.cutoff(now))


def whole_days_before(rules: list[Rule], now: datetime) -> datetime | None:
    """Before this time every log is due whatever its rule: the cutoff of the longest-lived
    rule, when a default rule covers every log; None when some logs are kept for good."""
    if not any(rule.is_default for rule in rules):
        return None
    return min(rule.cutoff(now) for rule in rules)
