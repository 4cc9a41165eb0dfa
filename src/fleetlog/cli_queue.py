"""`fleetlog status` and `fleetlog deadletters …`: the queue console, read from the pipeline's
Redis (FLEETLOG_REDIS_URL, with the workers' settings) directly.

Directly, not through the API: on a bad night the API processes may be down or refusing, which
is often why one looks, while the queue's whole state lives in Redis; an operator on the box
needs the settings the workers run with, and no key. Exit codes: 1 Redis unreachable or no such
dead letter, 2 a malformed id or embedded fleetlog (which has no queue).
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from fleetlog.config import Settings
from fleetlog.errors import FleetlogError, InvalidParameter
from fleetlog.keys import Keys
from fleetlog.queue.console import NO_QUEUE, QueueConsole, QueueOut
from fleetlog.queue.dead_letters import DeadLetters, DeadLetterShown, ReplayedOut
from fleetlog.redis_client import connect

T = TypeVar("T")

deadletters_app = typer.Typer(
    help="The entries the worker gave up on: list, show, replay, purge.", no_args_is_help=True
)
stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]


def on_redis(action: Callable[[QueueConsole, DeadLetters], Awaitable[T]]) -> T:
    """Run `action` on the pipeline's Redis; a refusal ends the command with its exit code."""
    settings = Settings()
    if settings.embedded or settings.redis_url is None:
        stderr.print(f"[red]error:[/] {NO_QUEUE}")
        raise typer.Exit(2)
    url = settings.redis_url

    async def run() -> T:
        client = connect(url, cluster=settings.redis_cluster)
        keys, shards = Keys(settings.redis_namespace), settings.stream_shards
        try:
            return await action(
                QueueConsole(client, keys=keys, shards=shards),
                DeadLetters(client, keys=keys, shards=shards),
            )
        finally:
            await client.aclose()

    try:
        return asyncio.run(run())
    except FleetlogError as exc:
        stderr.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2 if isinstance(exc, InvalidParameter) else 1) from None


def echo_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def show_status(status: QueueOut) -> None:
    shards = Table("shard", "backlog", "pending", "oldest", "dead letters", "stored/s")
    consumers = Table("shard", "consumer", "pending", "idle")
    for shard in status.shards:
        shards.add_row(
            str(shard.shard),
            f"{shard.backlog:,}",
            f"{shard.pending:,}",
            f"{shard.oldest_entry_age_s:,.1f} s",
            f"{shard.dead_letters:,}",
            rate(shard.stored_per_s),
        )
        for consumer in shard.consumers:
            consumers.add_row(
                str(shard.shard),
                consumer.name,
                f"{consumer.pending:,}",
                f"{consumer.idle_s:,.1f} s",
            )
    shards.add_row(
        "all",
        f"{status.backlog:,}",
        f"{status.pending:,}",
        f"{status.oldest_entry_age_s:,.1f} s",
        f"{status.dead_letters:,}",
        rate(status.stored_per_s),
        style="bold",
    )
    stdout.print(shards)
    stdout.print(consumers if consumers.row_count else "no consumers: no worker has read yet")


def status(json_output: Json = False) -> None:
    """The queue per shard: backlog, pending, the oldest entry's age, consumers, dead letters,
    logs stored per second. Reads the pipeline's Redis directly: works with the API down."""
    answer = on_redis(lambda console, _: console.status())
    if json_output:
        echo_json(answer)
    else:
        show_status(answer)


@deadletters_app.command("list")
def list_dead_letters(
    limit: Annotated[int, typer.Option(help="How many, oldest first", min=1)] = 100,
    json_output: Json = False,
) -> None:
    """The oldest dead letters over every shard."""
    answer = on_redis(lambda _, dead: dead.oldest(limit=limit))
    if json_output:
        echo_json(answer)
        return
    table = Table("id", "died", "reason", "deliveries", "logs", "error")
    for letter in answer.entries:
        table.add_row(
            letter.id,
            letter.dead_at.isoformat(timespec="seconds"),
            letter.reason,
            str(letter.deliveries),
            str(letter.logs),
            letter.error[:80],
        )
    stdout.print(table)
    stdout.print(f"{len(answer.entries)} of {answer.total} dead letters")


def show_letter(letter: DeadLetterShown) -> None:
    stdout.print(f"[bold]{letter.id}[/] (entry {letter.entry} of shard {letter.shard})")
    stdout.print(f"died     {letter.dead_at.isoformat(timespec='seconds')}")
    stdout.print(f"reason   {letter.reason}: {letter.error}")
    stdout.print(f"delivered {letter.deliveries} times, {letter.logs} logs")
    if letter.records is None:
        stdout.print(f"payload (not a batch of records): {letter.payload!r}")
        return
    table = Table("device", "level", "time", "message", "data")
    for record in letter.records:
        table.add_row(
            record["device_id"],
            record["log_level"],
            record["ts"],
            record["message"],
            str(record["log_data"]),
        )
    stdout.print(table)


@deadletters_app.command("show")
def show(
    dead_id: Annotated[str, typer.Argument(help="The dead letter's id, as listed")],
    json_output: Json = False,
) -> None:
    """One dead letter: the reason, the deliveries and the records it holds."""
    letter = on_redis(lambda _, dead: dead.show(dead_id))
    if json_output:
        echo_json(letter)
    else:
        show_letter(letter)


@deadletters_app.command("replay")
def replay(
    dead_ids: Annotated[list[str] | None, typer.Argument(help="Dead letters' ids")] = None,
    every: Annotated[bool, typer.Option("--all", help="Replay every dead letter")] = False,
    json_output: Json = False,
) -> None:
    """Put dead letters back through the normal path, each exactly once."""
    if bool(dead_ids) == every:
        stderr.print("[red]error:[/] name dead letters' ids, or give --all")
        raise typer.Exit(2)
    answer: ReplayedOut = on_redis(
        lambda _, dead: dead.replay_all() if every else dead.replay(dead_ids or [])
    )
    if json_output:
        echo_json(answer)
        return
    for dead_id, entry in answer.replayed.items():
        stdout.print(f"replayed {dead_id} as entry {entry}")
    for dead_id in answer.missing:
        stderr.print(f"[yellow]no dead letter {dead_id}[/] (replayed or purged already)")
    stdout.print(f"{len(answer.replayed)} replayed")


@deadletters_app.command("purge")
def purge(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Drop every dead letter of every shard, for good."""
    if not yes:
        typer.confirm("Drop every dead letter for good?", abort=True)
    purged = on_redis(lambda _, dead: dead.purge())
    stdout.print(f"purged {purged} dead letters")
