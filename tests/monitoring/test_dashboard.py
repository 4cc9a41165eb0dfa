"""The shipped Grafana dashboard is wired to the provisioned data source and lays out cleanly."""

import re

from tests.monitoring.dashboard import dashboard, panels
from tests.monitoring.prometheus import DEPLOY

GRAFANA = DEPLOY / "grafana"


def test_every_query_uses_the_provisioned_data_source() -> None:
    provisioned = (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    (uid,) = re.findall(r"^\s+uid: (\S+)$", provisioned, flags=re.MULTILINE)
    for panel in panels(dashboard()):
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        assert all(target["datasource"]["uid"] == uid for target in panel["targets"])


def test_the_provider_loads_the_directory_compose_mounts_the_dashboards_on() -> None:
    provider = (GRAFANA / "provisioning" / "dashboards" / "fleetlog.yml").read_text()
    (path,) = re.findall(r"^\s+path: (\S+)$", provider, flags=re.MULTILINE)
    compose = (DEPLOY.parent / "docker-compose.yml").read_text()
    assert f"./deploy/grafana/dashboards:{path}:ro" in compose


def test_panels_have_unique_ids_and_fit_the_grid() -> None:
    laid_out = dashboard()["panels"]
    ids = [panel["id"] for panel in laid_out]
    assert len(ids) == len(set(ids))
    for panel in laid_out:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]
