"""The deployment files use the configuration the way the README says."""

from pathlib import Path
from typing import Any

import yaml

from app.config.placement_conf import read
from app.db.urls import async_url
from tests.live_server import ROOT


def _services() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(data["services"])


def test_keystone_profile_runs_from_placement_conf_only() -> None:
    services = _services()
    replicas = [s for name, s in services.items() if name.startswith("placement-ks")]
    assert len(replicas) == 2
    for replica in replicas:
        assert replica["profiles"] == ["keystone"]
        assert not [v for v in replica.get("environment", {}) if v.startswith("PLACEMENT_")]
        assert "./deploy/keystone/placement.conf:/etc/placement/placement.conf:ro" in (
            replica["volumes"])
        assert replica["depends_on"]["keystone"]["condition"] == "service_healthy"
    assert services["keystone"]["profiles"] == ["keystone"]


def test_noauth2_replicas_opt_in_explicitly() -> None:
    for name, service in _services().items():
        if name.startswith(("api", "mariadb-api")):
            assert service["environment"]["PLACEMENT_AUTH_STRATEGY"] == "noauth2"
            assert service["environment"]["PLACEMENT_ALLOW_REMOTE_NOAUTH2"] == "true"


def test_the_profiles_placement_conf_is_complete() -> None:
    values = read([Path(ROOT / "deploy/keystone/placement.conf")])
    assert values["auth_strategy"] == "keystone"
    assert async_url(values["database_url"]).startswith("postgresql+asyncpg://")
    for option in ("auth_url", "www_authenticate_uri", "username", "password",
                   "project_name"):
        assert values["keystone"][option], option
