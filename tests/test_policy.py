"""The authorization matrix: every endpoint, every kind of caller, both policy modes."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.api.routing import RouteTable
from app.auth import RequestContext
from app.exceptions import Forbidden
from app.main import create_app
from app.policy import Authorizer
from app.routers import ALL_ROUTERS
from app.settings import Settings
from tests.api_helpers import app_client

RP = "4e8e5957-649f-477b-9e5b-f1f75b21c03c"
CONSUMER = "a7a5e4f2-5b1c-4c1e-9a53-1e2a3c9f0b11"

# (method, path, rule) for every protected operation.
ENDPOINTS = [
    ("GET", "/resource_providers", "placement:resource_providers:list"),
    ("POST", "/resource_providers", "placement:resource_providers:create"),
    ("GET", f"/resource_providers/{RP}", "placement:resource_providers:show"),
    ("PUT", f"/resource_providers/{RP}", "placement:resource_providers:update"),
    ("DELETE", f"/resource_providers/{RP}", "placement:resource_providers:delete"),
    ("GET", "/resource_classes", "placement:resource_classes:list"),
    ("POST", "/resource_classes", "placement:resource_classes:create"),
    ("GET", "/resource_classes/CUSTOM_X", "placement:resource_classes:show"),
    ("PUT", "/resource_classes/CUSTOM_X", "placement:resource_classes:update"),
    ("DELETE", "/resource_classes/CUSTOM_X", "placement:resource_classes:delete"),
    ("GET", f"/resource_providers/{RP}/inventories",
     "placement:resource_providers:inventories:list"),
    ("POST", f"/resource_providers/{RP}/inventories",
     "placement:resource_providers:inventories:create"),
    ("PUT", f"/resource_providers/{RP}/inventories",
     "placement:resource_providers:inventories:update"),
    ("DELETE", f"/resource_providers/{RP}/inventories",
     "placement:resource_providers:inventories:delete"),
    ("GET", f"/resource_providers/{RP}/inventories/VCPU",
     "placement:resource_providers:inventories:show"),
    ("PUT", f"/resource_providers/{RP}/inventories/VCPU",
     "placement:resource_providers:inventories:update"),
    ("DELETE", f"/resource_providers/{RP}/inventories/VCPU",
     "placement:resource_providers:inventories:delete"),
    ("GET", f"/resource_providers/{RP}/aggregates",
     "placement:resource_providers:aggregates:list"),
    ("PUT", f"/resource_providers/{RP}/aggregates",
     "placement:resource_providers:aggregates:update"),
    ("GET", f"/resource_providers/{RP}/usages", "placement:resource_providers:usages"),
    ("GET", "/traits", "placement:traits:list"),
    ("GET", "/traits/CUSTOM_T", "placement:traits:show"),
    ("PUT", "/traits/CUSTOM_T", "placement:traits:update"),
    ("DELETE", "/traits/CUSTOM_T", "placement:traits:delete"),
    ("GET", f"/resource_providers/{RP}/traits", "placement:resource_providers:traits:list"),
    ("PUT", f"/resource_providers/{RP}/traits", "placement:resource_providers:traits:update"),
    ("DELETE", f"/resource_providers/{RP}/traits",
     "placement:resource_providers:traits:delete"),
    ("POST", "/allocations", "placement:allocations:manage"),
    ("GET", f"/allocations/{CONSUMER}", "placement:allocations:list"),
    ("PUT", f"/allocations/{CONSUMER}", "placement:allocations:update"),
    ("DELETE", f"/allocations/{CONSUMER}", "placement:allocations:delete"),
    ("GET", f"/resource_providers/{RP}/allocations",
     "placement:resource_providers:allocations:list"),
    ("GET", "/allocation_candidates?resources=VCPU:1",
     "placement:allocation_candidates:list"),
    ("GET", "/usages?project_id=p1", "placement:usages"),
    ("POST", "/reshaper", "placement:reshaper:reshape"),
]

CALLERS = {
    "admin": {"x-auth-token": "admin"},
    "service": {"x-auth-token": "svc:p9", "x-roles": "service"},
    "project_admin": {"x-auth-token": "bob:p1", "x-roles": "admin,member,reader"},
    "member": {"x-auth-token": "bob:p1", "x-roles": "member,reader"},
    "reader": {"x-auth-token": "bob:p1", "x-roles": "reader"},
    "other_reader": {"x-auth-token": "eve:p2", "x-roles": "reader"},
    "no_roles": {"x-auth-token": "bob:p1"},
    "system_admin": {"x-auth-token": "admin", "openstack-system-scope": "all"},
}


def allowed(caller: str, rule: str, legacy: bool) -> bool:
    if caller in ("no_roles", "system_admin", "member", "other_reader"):
        # member and other_reader hold reader, but for another project (usages is p1)
        return rule == "placement:usages" and caller == "member"
    if caller == "reader":
        return rule == "placement:usages"
    if rule == "placement:reshaper:reshape":
        return caller == "service" or legacy
    return True


@pytest.fixture(params=[False, True], ids=["secure", "legacy"])
async def policy_client(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, bool]]:
    legacy = bool(request.param)
    settings = Settings(database_url=database_url, enforce_new_defaults=not legacy)
    headers = {"openstack-api-version": "placement latest", "content-type": "application/json"}
    async with app_client(settings, headers) as client:
        yield client, legacy


async def test_no_token_is_401_everywhere(
    policy_client: tuple[httpx.AsyncClient, bool],
) -> None:
    client, _ = policy_client
    for method, path, _rule in ENDPOINTS:
        response = await client.request(method, path, content=b"{}")
        assert response.status_code == 401, (method, path)


@pytest.mark.parametrize("caller", sorted(CALLERS))
async def test_policy_matrix(policy_client: tuple[httpx.AsyncClient, bool], caller: str) -> None:
    client, legacy = policy_client
    for method, path, rule in ENDPOINTS:
        response = await client.request(method, path, headers=CALLERS[caller], content=b"{}")
        assert response.status_code != 500, (method, path)
        if allowed(caller, rule, legacy):
            assert response.status_code not in (401, 403), (caller, method, path)
        else:
            assert response.status_code == 403, (caller, method, path, response.text)
            detail = response.json()["errors"][0]["detail"]
            assert rule in detail


async def test_policy_file_overrides_rules(tmp_path: Path, database_url: str) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"placement:resource_classes:list": "role:reader"\n')
    settings = Settings(database_url=database_url, policy_file=str(policy_file))
    async with app_client(settings, base_url="http://t") as client:
        reader = {"x-auth-token": "bob:p1", "x-roles": "reader",
                  "openstack-api-version": "placement latest"}
        assert (await client.get("/resource_classes", headers=reader)).status_code == 200
        admin = {"x-auth-token": "admin", "openstack-api-version": "placement latest"}
        assert (await client.get("/resource_classes", headers=admin)).status_code == 403


def test_malformed_policy_file_fails_at_start(tmp_path: Path, database_url: str) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("rules: [\n")
    with pytest.raises(SystemExit):
        create_app(Settings(database_url=database_url, policy_file=str(policy_file)))


OPERATIONS = RouteTable(
    route for router in ALL_ROUTERS for route in router.routes
).operations_by_policy()


def test_policy_file_change_takes_effect_within_the_reload_interval(tmp_path: Path) -> None:
    # Decisions are kept between looks at the file; a change is seen at the next look.
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"placement:traits:list": "role:reader"\n')
    now = [100.0]
    authorizer = Authorizer(
        str(policy_file), True, operations=OPERATIONS, reload_interval=1.0, clock=lambda: now[0]
    )
    reader = RequestContext(user_id="bob", project_id="p1", roles=["reader"])
    authorizer.authorize(reader, "placement:traits:list")
    policy_file.write_text('"placement:traits:list": "role:admin"\n')
    later = policy_file.stat().st_mtime + 10
    os.utime(policy_file, (later, later))
    now[0] += 0.5
    authorizer.authorize(reader, "placement:traits:list")  # the kept decision
    now[0] += 0.6
    with pytest.raises(Forbidden):
        authorizer.authorize(reader, "placement:traits:list")
    admin = RequestContext(user_id="admin", project_id="admin", roles=["admin"])
    authorizer.authorize(admin, "placement:traits:list")


def test_kept_decisions_distinguish_callers_and_targets() -> None:
    authorizer = Authorizer(None, True, operations=OPERATIONS)
    reader = RequestContext(user_id="bob", project_id="p1", roles=["reader"])
    authorizer.authorize(reader, "placement:usages", {"project_id": "p1"})
    with pytest.raises(Forbidden):
        authorizer.authorize(reader, "placement:usages", {"project_id": "p2"})
    with pytest.raises(Forbidden):
        authorizer.authorize(reader, "placement:traits:list")
    other = RequestContext(user_id="eve", project_id="p2", roles=["reader"])
    with pytest.raises(Forbidden):
        authorizer.authorize(other, "placement:usages", {"project_id": "p1"})
    authorizer.authorize(reader, "placement:usages", {"project_id": "p1"})
