"""The event-time window every ingest route applies, from the settings."""

from datetime import timedelta

from fleetlog.config import Settings
from fleetlog.event_time import EventWindow
from fleetlog.ingest import event_window

DAY = timedelta(days=1)


def test_by_default_a_week_back_and_ten_minutes_ahead():
    assert event_window(Settings(_env_file=None)) == EventWindow(
        max_age=7 * DAY, max_skew=timedelta(minutes=10)
    )


def test_never_older_than_the_retention_keeps_logs():
    kept_3_days = Settings(_env_file=None, max_event_age="P30D", retention_days=3)
    assert event_window(kept_3_days).max_age == 3 * DAY
    kept_90_days = Settings(_env_file=None, max_event_age="P30D", retention_days=90)
    assert event_window(kept_90_days).max_age == 30 * DAY
