"""The shipped Prometheus config and alert rules pass promtool, and each alert has a runbook."""

import re

from tests.monitoring.prometheus import DEPLOY, promtool

RULES = DEPLOY / "prometheus" / "alerts.yml"
OPERATIONS = DEPLOY.parent / "docs" / "operations.md"


def test_the_config_and_its_rules_are_valid() -> None:
    checked = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_pass_the_linter() -> None:
    checked = promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    tested = promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_both_ways() -> None:
    tests = (DEPLOY / "prometheus" / "alerts.test.yml").read_text()
    for alert in re.findall(r"- alert: (\w+)", RULES.read_text()):
        cases = re.findall(rf"alertname: {alert}\n\s+exp_alerts:( \[\])?", tests)
        assert "" in cases, f"no test of {alert} firing"
        assert " []" in cases, f"no test of {alert} staying quiet"


def test_every_alert_links_its_runbook_entry() -> None:
    alerts = re.findall(r"- alert: (\w+)", RULES.read_text())
    links = re.findall(r"runbook_url: docs/operations\.md#(\S+)", RULES.read_text())
    assert links == [alert.lower() for alert in alerts]
    runbook = OPERATIONS.read_text().split("\n## Runbook\n", 1)[1]
    entries = re.findall(r"^### (\w+)$", runbook, flags=re.MULTILINE)
    assert entries == alerts
