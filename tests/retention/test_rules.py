"""Which rule governs a log: the longest device prefix, then the one naming the level."""

import pytest

from fleetlog.records import LogLevel
from fleetlog.retention.rules import Rule, effective, governing

DEBUG_2 = Rule(1, LogLevel.DEBUG, None, 2)
TEST_1 = Rule(2, None, "test-", 1)
TEST_NORTH_5 = Rule(3, None, "test-north-", 5)
TEST_ERRORS_9 = Rule(4, LogLevel.ERROR, "test-", 9)
DEFAULT_30 = Rule(5, None, None, 30)
RULES = effective([DEBUG_2, TEST_1, TEST_NORTH_5, TEST_ERRORS_9, DEFAULT_30], None)


@pytest.mark.parametrize(
    ("device_id", "level", "rule"),
    [
        ("cam-1", "DEBUG", DEBUG_2),
        ("cam-1", "INFO", DEFAULT_30),
        ("test-7", "DEBUG", TEST_1),
        ("test-7", "ERROR", TEST_ERRORS_9),
        ("test-north-2", "ERROR", TEST_NORTH_5),
        ("test-north-2", "DEBUG", TEST_NORTH_5),
        ("tes", "INFO", DEFAULT_30),
    ],
)
def test_the_most_specific_rule_governs(device_id: str, level: str, rule: Rule) -> None:
    assert governing(RULES, device_id, level) == rule


def test_the_settings_retention_is_the_default_only_when_none_is_stored() -> None:
    from_settings = effective([DEBUG_2], 7)
    assert [rule.days for rule in from_settings] == [2, 7]
    assert from_settings[-1].id is None
    assert effective([DEBUG_2, DEFAULT_30], 7) == [DEBUG_2, DEFAULT_30]
    assert governing(effective([DEBUG_2], None), "cam-1", "INFO") is None
