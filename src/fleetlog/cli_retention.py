"""`fleetlog retention …`: manage the retention rules of a running server, preview a pass
(`--dry-run`) or run one now. Like `fleetlog query`, it talks to `--url` / FLEETLOG_URL with
FLEETLOG_API_KEY (an admin key or token); exit codes as there (1: refused or unreachable)."""

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleetlog.cli_client import talking_to
from fleetlog.client.api import DEFAULT_URL
from fleetlog.client.retention import RetentionApi
from fleetlog.records import LogLevel

retention_app = typer.Typer(
    help="Retention rules: how long logs are kept, by level and device prefix.",
    invoke_without_command=True,
)
rules_app = typer.Typer(help="List, add, change and remove retention rules.", no_args_is_help=True)
retention_app.add_typer(rules_app, name="rules")
stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)

Url = Annotated[
    str, typer.Option(envvar="FLEETLOG_URL", help="The fleetlog server", show_envvar=True)
]
ApiKey = Annotated[
    str | None,
    typer.Option(envvar="FLEETLOG_API_KEY", help="An admin key or token", show_envvar=True),
]


def rule_words(rule: dict[str, Any]) -> str:
    named = [
        f"level {rule['log_level']}" if rule.get("log_level") else "",
        f"devices {rule['device_prefix']}*" if rule.get("device_prefix") else "",
    ]
    return " and ".join(part for part in named if part) or "default"


def show_report(report: dict[str, Any], *, title: str) -> None:
    table = Table("rule", "days kept", "logs", "event days", "oldest", "newest", title=title)
    for tally in report["rules"]:
        table.add_row(
            rule_words(tally["rule"]),
            str(tally["rule"]["days"]),
            f"{tally['rows']:,}",
            str(tally["days"]),
            tally["oldest"] or "-",
            tally["newest"] or "-",
        )
    stdout.print(table)
    if report["partitions"]:
        stdout.print(f"day partitions dropped whole: {', '.join(report['partitions'])}")
    for file in report["archived"]:
        stdout.print(f"archived {file['rows']:,} logs in {file['name']}")


@retention_app.callback()
def retention(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show per rule what a pass would remove now")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Preview a pass with --dry-run; see the commands below."""
    ctx.obj = (url, api_key)
    if ctx.invoked_subcommand is not None:
        return
    if not dry_run:
        stdout.print(ctx.get_help())
        raise typer.Exit(2)
    with talking_to(url, api_key) as api:
        report = RetentionApi(api).preview()
    show_report(report, title=f"a pass at {report['at']} would remove {report['rows']:,} logs")


@retention_app.command("apply")
def apply(ctx: typer.Context) -> None:
    """Run a pass now, and show what it removed."""
    with talking_to(*ctx.obj) as api:
        report = RetentionApi(api).apply()
    show_report(report, title=f"removed {report['rows']:,} logs")


@rules_app.command("list")
def list_rules(ctx: typer.Context) -> None:
    """The stored rules, and the rules a pass applies (most specific first)."""
    with talking_to(*ctx.obj) as api:
        answer = RetentionApi(api).rules()
    table = Table("id", "rule", "days kept", title="rules applied, most specific first")
    for rule in answer["effective"]:
        rule_id = "FLEETLOG_RETENTION_DAYS" if rule["id"] is None else str(rule["id"])
        table.add_row(rule_id, rule_words(rule), str(rule["days"]))
    stdout.print(table)


Level = Annotated[
    LogLevel | None, typer.Option(help="The level the rule keeps", case_sensitive=False)
]
Prefix = Annotated[
    str | None, typer.Option(help="The devices the rule keeps: ids starting so (e.g. test-)")
]
Days = Annotated[int, typer.Option(help="Days of event time its logs are kept", min=1)]


def rule_body(level: LogLevel | None, device_prefix: str | None, days: int) -> dict[str, Any]:
    return {"log_level": level, "device_prefix": device_prefix, "days": days}


@rules_app.command("add")
def add_rule(
    ctx: typer.Context, days: Days, level: Level = None, device_prefix: Prefix = None
) -> None:
    """Add a rule; with neither --level nor --device-prefix it is the default rule."""
    with talking_to(*ctx.obj) as api:
        rule = RetentionApi(api).add(rule_body(level, device_prefix, days))
    stderr.print(f"added rule {rule['id']}: {rule_words(rule)} kept {rule['days']} days")


@rules_app.command("set")
def replace_rule(
    ctx: typer.Context,
    rule_id: Annotated[int, typer.Argument(help="The rule's id (see rules list)", min=1)],
    days: Days,
    level: Level = None,
    device_prefix: Prefix = None,
) -> None:
    """Change a rule: what it matches and how long it keeps."""
    with talking_to(*ctx.obj) as api:
        rule = RetentionApi(api).replace(rule_id, rule_body(level, device_prefix, days))
    stderr.print(f"rule {rule['id']}: {rule_words(rule)} kept {rule['days']} days")


@rules_app.command("remove")
def remove_rule(
    ctx: typer.Context,
    rule_id: Annotated[int, typer.Argument(help="The rule's id (see rules list)", min=1)],
) -> None:
    """Remove a rule; its logs fall to the next most specific rule."""
    with talking_to(*ctx.obj) as api:
        rule = RetentionApi(api).remove(rule_id)
    stderr.print(f"removed rule {rule['id']}: {rule_words(rule)}")
