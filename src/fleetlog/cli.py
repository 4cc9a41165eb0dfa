"""The `fleetlog` command: serve and worker. Thin: it reads settings and hands them down;
migrate, backup, restore, query, tail, export, import, bench, keys and users live in their own cli_*
modules."""

import asyncio
import logging
import math
import os
import shutil
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn
import uvloop
from prometheus_client import start_http_server
from rich.console import Console
from rich.text import Text

from fleetlog.alerts.runtime import running_alerts
from fleetlog.api.connections import bounded_protocol, ensure_file_limit
from fleetlog.cli_alerts import alerts_app
from fleetlog.cli_bench import bench
from fleetlog.cli_client import query, tail
from fleetlog.cli_credentials import keys_app, security_banner, users_app
from fleetlog.cli_queue import deadletters_app, status
from fleetlog.cli_retention import retention_app
from fleetlog.cli_schema import backup, migrate_command, restore
from fleetlog.cli_transfer import export, import_
from fleetlog.cli_up import up
from fleetlog.config import Settings
from fleetlog.logconfig import configure_logging, logging_config
from fleetlog.store.engine import create_store_engine
from fleetlog.store.migrate import UnknownRevision
from fleetlog.store.migrate import migrate as migrate_store
from fleetlog.worker.runner import run_worker

app = typer.Typer(
    help="fleetlog: log collection that never loses an accepted log.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(retention_app, name="retention")
app.add_typer(alerts_app, name="alerts")
app.add_typer(deadletters_app, name="deadletters")
app.command()(status)
app.command()(bench)
app.command()(query)
app.command()(tail)
app.command()(export)
app.command(name="import")(import_)
app.command()(up)
app.command(name="migrate")(migrate_command)
app.command()(backup)
app.command()(restore)
console = Console(stderr=True)
log = logging.getLogger(__name__)


def load_settings(**overrides: object) -> Settings:
    """Settings from FLEETLOG_* and .env, with the command line's options on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    for key, value in given.items():
        # Server processes started by uvicorn read their settings from the environment.
        os.environ[f"FLEETLOG_{key.upper()}"] = str(value)
    return Settings()


async def migrate_to_head(settings: Settings) -> None:
    engine = create_store_engine(settings)
    try:
        await migrate_store(engine)
    except UnknownRevision as unknown:
        console.print(f"[red]{unknown}[/]")
        raise typer.Exit(2) from None
    finally:
        await engine.dispose()


def share_metrics_across(settings: Settings) -> None:
    """With several server processes, /metrics sums them all (prometheus multiprocess mode)."""
    metrics_dir = settings.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def announce(settings: Settings, message: str) -> None:
    """Tell the operator: on the console, or as one log line like the others when they are JSON."""
    if settings.log_format == "json":
        log.info("%s", Text.from_markup(message).plain)
    else:
        console.print(message)


def banner(settings: Settings, security: str) -> None:
    url = f"http://{settings.host}:{settings.port}"
    store = settings.sqlite_path.resolve() if settings.embedded else settings.database_url
    lines = [
        f"[bold green]fleetlog[/] {settings.mode} mode, {settings.workers} process(es)",
        f"  listening on  {url}",
        f"  logs kept in  {store}",
        f"  API docs      {url}/docs",
        f"  metrics       {url}/metrics",
        f"  security      {security}",
    ]
    if settings.syslog_port is not None:
        lines.append(f"  syslog        {settings.host}:{settings.syslog_port} (UDP and TCP)")
    if settings.gelf_port is not None:
        lines.append(f"  GELF          {settings.host}:{settings.gelf_port} (UDP), {url}/gelf")
    announce(settings, "\n".join(lines))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes", min=1)] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where embedded data lives")] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Serve off loopback even with no credentials")
    ] = False,
    syslog_port: Annotated[
        int | None, typer.Option(help="Also take syslog on this port (UDP and TCP)", min=0)
    ] = None,
    gelf_port: Annotated[
        int | None, typer.Option(help="Also take GELF on this UDP port", min=0)
    ] = None,
) -> None:
    """Run the service (embedded on SQLite unless Redis and PostgreSQL are configured)."""
    settings = load_settings(
        host=host,
        port=port,
        workers=workers,
        data_dir=data_dir,
        insecure=insecure or None,
        syslog_port=syslog_port,
        gelf_port=gelf_port,
    )
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(migrate_to_head(settings))
    security = security_banner(settings)
    if settings.workers > 1:
        share_metrics_across(settings)
    banner(settings, security)
    ensure_file_limit(settings.max_connections)
    exit_cleanly_on_sigterm()
    uvicorn.run(
        "fleetlog.api.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=bounded_protocol(settings),
        # X-Forwarded-For and -Proto count only from the proxies named; by default from none.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
        # Applied again in each server process uvicorn starts; its access log is fleetlog's.
        log_config=logging_config(settings.log_format, settings.log_level),
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout.total_seconds()),
    )


def exit_cleanly_on_sigterm() -> None:
    """Once it has shut down gracefully, uvicorn raises the SIGTERM it caught again, and by
    default the process would die of it (exit 143). A stop asked for and carried out is a
    clean exit: 0, as service managers and `docker stop` expect."""

    def clean_exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, clean_exit)


@app.command()
def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of this worker's /metrics (0: none)", min=0)
    ] = None,
) -> None:
    """Move accepted logs from the Redis streams into PostgreSQL, and evaluate alerts and send
    their webhooks, until SIGTERM."""
    settings = load_settings(worker_metrics_port=metrics_port)
    configure_logging(settings.log_format, settings.log_level)
    if settings.redis_url is None or settings.database_url is None:
        console.print("[red]fleetlog worker needs FLEETLOG_REDIS_URL and FLEETLOG_DATABASE_URL[/]")
        raise typer.Exit(2)
    asyncio.run(migrate_to_head(settings))
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    announce(
        settings,
        f"[bold green]fleetlog worker[/] {settings.stream_shards} shards, "
        f"metrics on port {settings.worker_metrics_port or 'none'}",
    )
    uvloop.run(work(settings))


async def work(settings: Settings) -> None:
    """Store logs, and evaluate alerts and send their webhooks beside (alerts/runtime.py)."""
    async with running_alerts(settings):
        await run_worker(settings)


def main() -> None:
    app()
