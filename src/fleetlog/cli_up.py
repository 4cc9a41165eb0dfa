"""`fleetlog up`: the production topology on one machine, without Docker (topology/up.py)."""

from typing import Annotated

import typer
from rich.console import Console

from fleetlog.config import Settings
from fleetlog.logconfig import configure_logging
from fleetlog.topology.nginx import NGINX
from fleetlog.topology.up import run_up

console = Console(stderr=True, highlight=False)


def up(
    api: Annotated[int, typer.Option("--api", help="API processes behind nginx", min=1)] = 2,
    workers: Annotated[int, typer.Option(help="Worker processes", min=1)] = 2,
    host: Annotated[str | None, typer.Option(help="Address nginx listens on")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port nginx listens on; API processes take the next ones")
    ] = None,
) -> None:
    """Run nginx in front of API processes, plus workers, until Ctrl-C or SIGTERM (Redis and
    PostgreSQL from FLEETLOG_REDIS_URL and FLEETLOG_DATABASE_URL)."""
    settings = Settings()
    given = {"host": host, "port": port}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    if settings.embedded or settings.redis_url is None:
        console.print("[red]fleetlog up needs FLEETLOG_REDIS_URL and FLEETLOG_DATABASE_URL[/]")
        raise typer.Exit(2)
    if not NGINX.exists():
        console.print(f"[red]fleetlog up runs {NGINX}: install Debian's nginx-light[/]")
        raise typer.Exit(2)
    code = run_up(
        settings,
        api=api,
        workers=workers,
        on_ready=lambda url: console.print(f"[bold green]fleetlog is up[/] at {url}"),
    )
    raise typer.Exit(code)
