"""The life of one alert (a rule and a group): pending → firing → resolved.

A condition that starts holding makes the alert pending; held `for` long, it fires; once it
stops holding, a firing alert resolves, and a pending one goes back to inactive unnoticed.
Only firing and resolving are notified: once each per episode.
"""

from dataclasses import replace
from datetime import datetime, timedelta

from fleetlog.alerts.ledger import State

QUIET = ("inactive", "resolved")


def step(
    state: State | None,
    *,
    group: str,
    holds: bool,
    value: float,
    now: datetime,
    hold_for: timedelta,
) -> tuple[State | None, str | None]:
    """The alert's next state (None: none to keep) and the status to notify, if any."""
    if state is None:
        if not holds:
            return None, None
        state = State(group=group, state="inactive", value=value)
    state = replace(state, value=value)
    if holds:
        if state.state in QUIET:
            state = replace(state, state="pending", active_since=now, resolved_at=None)
        if state.state == "pending" and state.active_since is not None:
            if now - state.active_since >= hold_for:
                return replace(state, state="firing", fired_at=now), "firing"
        return state, None
    if state.state == "firing":
        return replace(state, state="resolved", resolved_at=now), "resolved"
    if state.state == "pending":
        return replace(state, state="inactive", active_since=None), None
    return state, None
