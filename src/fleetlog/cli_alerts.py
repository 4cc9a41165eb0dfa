"""`fleetlog alerts …`: alert rules, webhook targets, the alerts and the webhook jobs of a
running server (like `fleetlog query`: `--url`/FLEETLOG_URL, an admin FLEETLOG_API_KEY)."""

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from fleetlog.cli_client import ApiKey, AsJson, Url, talking_to
from fleetlog.client.admin import call
from fleetlog.client.api import DEFAULT_URL

alerts_app = typer.Typer(
    help="Alert rules and their webhooks (docs/lifecycle.md).", no_args_is_help=True
)
rules_app = typer.Typer(help="Alert rules (admin).", no_args_is_help=True)
targets_app = typer.Typer(help="Webhook targets (admin).", no_args_is_help=True)
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(targets_app, name="targets")
stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def request(url: str, api_key: str | None, method: str, path: str, **options: Any) -> Any:
    with talking_to(url, api_key) as api:
        return call(api, method, path, **options)


def show(answer: Any, table: Table | None, *, as_json: bool) -> None:
    if as_json or table is None:
        typer.echo(json.dumps(answer, indent=2))
    else:
        stdout.print(table)


def seconds(value: int) -> str:
    return f"{value // 60}m" if value % 60 == 0 and value else f"{value}s"


@rules_app.command("list")
def list_rules(url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Every rule."""
    rules = request(url, api_key, "GET", "/api/alerts/rules")
    table = Table("name", "kind", "query", "condition", "group by", "for", "targets")
    for rule in rules:
        condition = f"> {seconds(rule['window'])} silent"
        if rule["kind"] == "threshold":
            condition = (
                f"count over {seconds(rule['window'])} {rule['comparison']} {rule['threshold']}"
            )
        table.add_row(
            rule["name"],
            rule["kind"],
            rule["query"] or "(all logs)",
            condition,
            rule["group_by"] or "-",
            seconds(rule["for"]),
            ", ".join(rule["targets"]) or "-",
        )
    show(rules, table, as_json=as_json)


@rules_app.command("show")
def show_rule(name: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """One rule, as JSON."""
    show(
        request(url, api_key, "GET", f"/api/alerts/rules/{quote(name, safe='')}"),
        None,
        as_json=True,
    )


@rules_app.command("add")
def add_rule(
    name: Annotated[str, typer.Argument(help="A unique name")],
    query: Annotated[str, typer.Option(help="What to count, e.g. 'level>=error'")] = "",
    window: Annotated[str, typer.Option(help="Counted over (whole minutes): 5m, 1h")] = "5m",
    threshold: Annotated[int, typer.Option(help="Compared with the count")] = 0,
    comparison: Annotated[str, typer.Option(help=">, >=, <, <=, == or !=")] = ">",
    group_by: Annotated[str | None, typer.Option(help="device or level")] = None,
    hold_for: Annotated[str, typer.Option("--for", help="Holds this long before firing")] = "0",
    silence: Annotated[
        bool, typer.Option("--silence", help="Fire for each device of QUERY silent for WINDOW")
    ] = False,
    summary: Annotated[str | None, typer.Option(help="The notification's summary")] = None,
    target: Annotated[list[str] | None, typer.Option(help="A webhook target (repeatable)")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the rule of that name")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Add a rule, e.g. `add errors --query 'level>=error' --threshold 10 --group-by device`,
    or `add pumps-silent --silence --query 'device:pump-*' --window 15m`."""
    body: dict[str, Any] = {
        "name": name,
        "kind": "silence" if silence else "threshold",
        "query": query,
        "window": window,
        "for": hold_for,
        "targets": target or [],
    }
    if not silence:
        body |= {"threshold": threshold, "comparison": comparison}
    if group_by is not None:
        body["group_by"] = group_by
    if summary is not None:
        body["summary"] = summary
    method, path = "POST", "/api/alerts/rules"
    if replace:
        method, path = "PUT", f"/api/alerts/rules/{quote(name, safe='')}"
    rule = request(url, api_key, method, path, body=body)
    stderr.print(f"rule [bold]{rule['name']}[/] {'replaced' if replace else 'added'}")


@rules_app.command("remove")
def remove_rule(name: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Remove a rule and its alerts; its history stays."""
    request(url, api_key, "DELETE", f"/api/alerts/rules/{quote(name, safe='')}")
    stderr.print(f"rule [bold]{name}[/] removed")


@targets_app.command("list")
def list_targets(url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    targets = request(url, api_key, "GET", "/api/alerts/targets")
    table = Table("name", "url", "format", "created")
    for target in targets:
        table.add_row(target["name"], target["url"], target["format"], target["created_at"])
    show(targets, table, as_json=as_json)


@targets_app.command("add")
def add_target(
    name: str,
    target_url: Annotated[str, typer.Argument(metavar="WEBHOOK_URL", help="Where to POST")],
    format: Annotated[str, typer.Option(help="alertmanager or slack")] = "alertmanager",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Add a webhook and print its signing secret once, as the last word."""
    body = {"name": name, "url": target_url, "format": format}
    target = request(url, api_key, "POST", "/api/alerts/targets", body=body)
    stderr.print(f"target [bold]{target['name']}[/] added; its signing secret, shown once:")
    typer.echo(target["secret"])


@targets_app.command("remove")
def remove_target(name: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    request(url, api_key, "DELETE", f"/api/alerts/targets/{quote(name, safe='')}")
    stderr.print(f"target [bold]{name}[/] removed")


@alerts_app.command("status")
def status(
    limit: Annotated[int, typer.Option(help="Notifications of history", min=1, max=1000)] = 20,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """The alerts now, and the last notifications with their deliveries."""
    answer = request(url, api_key, "GET", "/api/alerts", params={"limit": limit})
    if as_json:
        show(answer, None, as_json=True)
        return
    if not answer["evaluated"]:
        stderr.print("[yellow]this server evaluates no rules: alerts need FLEETLOG_REDIS_URL[/]")
    alerts = Table("rule", "group", "state", "value", "since", title="alerts")
    for alert in answer["alerts"]:
        since = alert["fired_at"] or alert["active_since"] or alert["resolved_at"] or "-"
        alerts.add_row(
            alert["rule"], alert["group"] or "-", alert["state"], f"{alert['value']:g}", since
        )
    history = Table("at", "rule", "group", "status", "deliveries", title="notifications")
    for sent in answer["history"]:
        deliveries = ", ".join(
            f"{each['target']} {each['status']} ({each['attempts']})" for each in sent["deliveries"]
        )
        history.add_row(
            sent["created_at"],
            sent["rule"],
            sent["group"] or "-",
            sent["status"],
            deliveries or "-",
        )
    stdout.print(alerts)
    stdout.print(history)


@alerts_app.command("jobs")
def jobs(url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The webhook job queue: waiting, delayed and dead-lettered jobs (admin), as JSON."""
    show(request(url, api_key, "GET", "/api/admin/jobs"), None, as_json=True)
