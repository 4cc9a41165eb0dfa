"""`fleetlog keys …` and `fleetlog users …`: manage the credentials every API process reads."""

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from fleetlog.auth.credentials import Credentials, KeyRequest
from fleetlog.auth.principals import Role, Scope
from fleetlog.config import Settings
from fleetlog.errors import FleetlogError
from fleetlog.store.engine import create_store_engine
from fleetlog.store.migrate import migrate

T = TypeVar("T")

keys_app = typer.Typer(help="API keys for devices and services.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in (OAuth2 password flow).", no_args_is_help=True)
stderr = Console(stderr=True)
stdout = Console()


def use_data_dir(
    data_dir: Annotated[Path | None, typer.Option(help="Where embedded data lives")] = None,
) -> None:
    if data_dir is not None:
        os.environ["FLEETLOG_DATA_DIR"] = str(data_dir)


keys_app.callback()(use_data_dir)
users_app.callback()(use_data_dir)


def with_credentials(action: Callable[[Credentials], Awaitable[T]]) -> T:
    """Run `action` on the configured store (migrated first); a refusal ends the command."""

    async def run() -> T:
        engine = create_store_engine(Settings())
        try:
            await migrate(engine)
            return await action(Credentials(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except FleetlogError as exc:
        stderr.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(1) from None


def when(value: object) -> str:
    return "-" if value is None else str(value)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="A unique name, e.g. the device group")],
    scope: Annotated[Scope, typer.Option(help="What the key may do")],
    device_prefix: Annotated[
        str | None, typer.Option(help="Ingest and read keys: only devices starting so")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Requests per second (with --burst)")] = None,
    burst: Annotated[
        int | None, typer.Option(help="Requests allowed at once (with --rate)")
    ] = None,
) -> None:
    """Create a key and print it once, as the last word; only its hash is kept."""
    request = KeyRequest(name, scope, device_prefix=device_prefix, rate=rate, burst=burst)
    key, secret = with_credentials(lambda credentials: credentials.create_key(request))
    limit = "default rate" if key.rate is None else f"{key.rate:g} req/s, burst {key.burst}"
    devices = "" if key.device_prefix is None else f", devices {key.device_prefix}*"
    stderr.print(f"created key {key.id} [bold]{key.name}[/] ({key.scope}{devices}, {limit})")
    stderr.print("[yellow]store it now: it is not shown again[/]")
    typer.echo(secret)


@keys_app.command("list")
def list_keys() -> None:
    """Every key ever created (never the keys themselves)."""
    keys = with_credentials(lambda credentials: credentials.keys.list())
    table = Table(
        "id", "name", "hint", "scope", "device prefix", "rate", "burst", "created", "revoked"
    )
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.hint + "…",
            key.scope,
            when(key.device_prefix),
            when(key.rate),
            when(key.burst),
            key.created_at.isoformat(timespec="seconds"),
            when(key.revoked_at and key.revoked_at.isoformat(timespec="seconds")),
        )
    stdout.print(table)


@keys_app.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key's name, or id:<id> (id:7); 7 is a name")],
) -> None:
    """Revoke one key; API processes refuse it within FLEETLOG_AUTH_CACHE_TTL."""
    revoked = with_credentials(lambda credentials: credentials.revoke_key(key))
    stderr.print(f"revoked key {revoked.id} [bold]{revoked.name}[/]")


def ask_password(given: str | None) -> str:
    if given is not None:
        return given
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


PasswordOption = Annotated[
    str | None, typer.Option(help="The password (asked for when not given)", show_default=False)
]


@users_app.command("create")
def create_user(
    name: Annotated[str, typer.Argument(help="The user name to sign in with")],
    role: Annotated[Role, typer.Option(help="admin: everything; reader: query routes")],
    password: PasswordOption = None,
) -> None:
    """Create a user who signs in at /api/auth/token."""
    secret = ask_password(password)
    user = with_credentials(
        lambda credentials: credentials.create_user(name, role=role, password=secret)
    )
    stderr.print(f"created user {user.id} [bold]{user.name}[/] ({user.role})")


@users_app.command("passwd")
def set_password(name: str, password: PasswordOption = None) -> None:
    """Change a user's password; their tokens issued before stop working."""
    secret = ask_password(password)
    with_credentials(lambda credentials: credentials.set_password(name, secret))
    stderr.print(f"password of [bold]{name}[/] changed")


@users_app.command("delete")
def delete_user(name: str) -> None:
    """Delete a user; their tokens stop working within FLEETLOG_AUTH_CACHE_TTL."""
    with_credentials(lambda credentials: credentials.users.delete(name))
    stderr.print(f"deleted user [bold]{name}[/]")


@users_app.command("list")
def list_users() -> None:
    users = with_credentials(lambda credentials: credentials.users.list())
    table = Table("id", "name", "role", "created")
    for user in users:
        table.add_row(str(user.id), user.name, user.role, user.created_at.isoformat())
    stdout.print(table)


def security_banner(settings: Settings) -> str:
    """How the server will be protected; refuses to serve open off loopback unless told to."""
    url = f"http://{settings.host}:{settings.port}"
    if with_credentials(lambda credentials: credentials.exist()):
        return "[green]credentials required[/] (API keys, user tokens; see docs/security.md)"
    if not settings.open_allowed:
        stderr.print(
            f"[bold red]refusing to start:[/] no API key or user exists and {settings.host} is "
            "not a loopback address, so anyone could write and read every log.\n"
            "Create an admin key first:  fleetlog keys create --name admin --scope admin\n"
            "or, knowingly, serve unprotected:  fleetlog serve --insecure"
        )
        raise typer.Exit(2)
    return (
        f"[bold red]OPEN: no credentials exist; anyone who can reach {url} can write and read "
        "every log.[/] To close it: fleetlog keys create --name admin --scope admin"
    )
