"""fleetlog's nginx site, rendered from one template for compose, systemd and `fleetlog up`."""

import os
from importlib.resources import files
from pathlib import Path

from fleetlog.config import Settings

NGINX = Path("/usr/sbin/nginx")
TEMPLATE = "nginx_site.conf.in"
# A dead API process is left out for this long after one failed request, then tried again.
FAIL_TIMEOUT = "5s"


def render_site(servers: list[str], *, listen: str, max_body_bytes: int, purpose: str) -> str:
    """The site: an upstream of `servers` (host:port) and the server that proxies to it."""
    upstream = "\n".join(
        f"    server {server} max_fails=1 fail_timeout={FAIL_TIMEOUT};" for server in servers
    )
    values = {
        "purpose": purpose,
        "servers": upstream,
        "listen": listen,
        "max_body_bytes": str(max_body_bytes),
    }
    text = files("fleetlog.topology").joinpath(TEMPLATE).read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text


def render_main(workdir: Path, *, site: Path) -> str:
    """A whole nginx.conf that keeps its pid, temp files and logs in `workdir`."""
    lines = [
        "daemon off;",
        "worker_processes 1;",
        f"pid {workdir / 'nginx.pid'};",
        f"error_log {workdir / 'error.log'} warn;",
        "events { worker_connections 1024; }",
        "http {",
        f"    access_log {workdir / 'access.log'};",
        *(
            f"    {kind}_temp_path {workdir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        f"    include {site};",
        "}",
    ]
    if os.geteuid() == 0:
        # The master runs as root; its workers drop to nobody, who must reach the temp paths.
        lines.insert(0, "user nobody nogroup;")
    return "\n".join(lines) + "\n"


def shipped_sites() -> dict[str, str]:
    """The sites deploy/nginx ships, by file name: two API processes of the default settings."""
    max_body = Settings.model_fields["max_body_bytes"].default
    return {
        "fleetlog.conf": render_site(
            ["127.0.0.1:8001", "127.0.0.1:8002"],
            listen="80",
            max_body_bytes=max_body,
            purpose="the site for deploy/systemd's fleetlog-api@8001 and @8002",
        ),
        "compose.conf": render_site(
            ["api-1:8000", "api-2:8000"],
            listen="80",
            max_body_bytes=max_body,
            purpose="the site of docker-compose.yml's nginx, in front of api-1 and api-2",
        ),
    }


if __name__ == "__main__":
    for name, text in shipped_sites().items():
        (Path("deploy/nginx") / name).write_text(text)
