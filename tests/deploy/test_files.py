"""The deployment files: the compose file through a real Compose implementation, the Dockerfile
through hadolint, the nginx site through nginx itself, the systemd units through systemd."""

import os
import subprocess
import sys
from pathlib import Path

from fleetlog.topology.nginx import NGINX, render_main, shipped_sites

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "POSTGRES_PASSWORD": "compose-check",
    "FLEETLOG_JWT_SECRET": "compose-check-" + "x" * 32,
    "GRAFANA_ADMIN_PASSWORD": "compose-check",
}


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )


def test_compose_file_is_valid_and_names_the_topology() -> None:
    compose = ("docker-compose", "-f", "docker-compose.yml", "config")
    checked = run(*compose, "-q", env=SECRETS)
    assert checked.returncode == 0, checked.stderr
    services = run(*compose, "--services", env=SECRETS).stdout.split()
    assert sorted(services) == sorted(
        ["nginx", "api-1", "api-2", "worker-1", "worker-2", "migrate", "redis", "postgres"]
        + ["prometheus", "grafana"]
    )


def test_compose_refuses_to_start_without_its_secrets() -> None:
    missing = run("docker-compose", "-f", "docker-compose.yml", "config", "-q", env={})
    assert missing.returncode != 0
    assert "POSTGRES_PASSWORD" in missing.stderr


def test_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    linted = run(str(hadolint), "Dockerfile")
    assert linted.returncode == 0, linted.stdout


def test_shipped_nginx_sites_are_the_template_rendered() -> None:
    for name, text in shipped_sites().items():
        shipped = (ROOT / "deploy/nginx" / name).read_text()
        assert shipped == text, f"re-render deploy/nginx/{name}: python -m fleetlog.topology.nginx"


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(
        render_main(tmp_path, site=ROOT / "deploy/nginx/fleetlog.conf")
    )
    tmp_path.chmod(0o755)
    tested = run(str(NGINX), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"))
    assert tested.returncode == 0, tested.stderr


def test_systemd_units_verify(tmp_path: Path) -> None:
    """systemd-analyze checks every key; the units' fleetlog is the one installed here."""
    fleetlog = str(Path(sys.executable).parent / "fleetlog")
    for unit in (ROOT / "deploy/systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/fleetlog/bin/fleetlog", fleetlog)
        (tmp_path / unit.name).write_text(text)
    units = ["fleetlog-api@8001.service", "fleetlog-worker@9100.service"]
    verified = run(
        "systemd-analyze",
        "verify",
        *(f"{tmp_path}/{unit}" for unit in units),
        f"{tmp_path}/fleetlog-migrate.service",
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == ""
