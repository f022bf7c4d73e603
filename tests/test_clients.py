"""The standard OpenStack clients against a live server.

* The ``openstack`` CLI with the osc-placement plugin, as operators run it:
  ``openstack --os-auth-type admin_token --os-endpoint URL --os-token admin
  --os-placement-api-version 1.39 ...``. A few commands go through the console
  script in a subprocess; the rest call the same entry point
  (``openstackclient.shell.main``) in-process, which is the same code minus
  ~1 s of start-up per command.
* openstacksdk's placement proxy:
  ``Connection(auth_type="admin_token", auth={"endpoint": URL, "token": "admin"})``.

The server is ``placement-api`` in its own process on a fresh SQLite file.
"""

import contextlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer

pytest.importorskip("openstackclient")
pytest.importorskip("osc_placement")
openstack = pytest.importorskip("openstack")

VERSION = "1.39"

# The client libraries' own deprecation notices are not about this service.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("clients")
    live = LiveServer(f"sqlite+aiosqlite:///{workdir / 'placement.sqlite'}",
                      workdir / "server.log").start()
    try:
        yield live
    finally:
        live.stop()


def auth_args(url: str) -> list[str]:
    return ["--os-auth-type", "admin_token", "--os-endpoint", url, "--os-token", "admin",
            "--os-placement-api-version", VERSION]


class CLI:
    """``openstack`` commands against the server; failures come back, not raised."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, *args: str) -> tuple[int, str, str]:
        from openstackclient.shell import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([*auth_args(self.url), *args])
            except SystemExit as exc:  # argparse errors
                rc = exc.code if isinstance(exc.code, int) else 2
        return rc, out.getvalue(), err.getvalue()

    def ok(self, *args: str) -> str:
        rc, out, err = self.run(*args)
        assert rc == 0, f"openstack {' '.join(args)} -> {rc}: {err}"
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-f", "json"))

    def fails(self, *args: str) -> str:
        rc, _, err = self.run(*args)
        assert rc != 0, f"openstack {' '.join(args)} unexpectedly succeeded"
        return err.strip()


@pytest.fixture
def cli(server: LiveServer) -> CLI:
    return CLI(server.url)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


def openstack_executable() -> str:
    path = Path(sys.executable).parent / "openstack"
    if not path.exists():
        pytest.skip("the openstack console script is not installed beside this Python")
    return str(path)


# ---------------------------------------------------------------- the CLI

def test_console_script(server: LiveServer) -> None:
    command = [openstack_executable(), *auth_args(server.url)]
    listed = subprocess.run([*command, "resource", "class", "show", "VCPU", "-f", "json"],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"name": "VCPU"}
    providers = subprocess.run([*command, "resource", "provider", "list", "-f", "json"],
                               capture_output=True, text=True, timeout=120)
    assert providers.returncode == 0, providers.stderr
    assert isinstance(json.loads(providers.stdout), list)
    # --os-auth-type none sends the token "notused": a user without the admin role.
    anonymous = subprocess.run(
        [openstack_executable(), "--os-auth-type", "none", "--os-endpoint", server.url,
         "--os-placement-api-version", VERSION, "resource", "provider", "list"],
        capture_output=True, text=True, timeout=120,
    )
    assert anonymous.returncode != 0
    assert "HTTP 403" in anonymous.stderr


def test_resource_provider_commands(cli: CLI) -> None:
    name = unique("cli-rp-")
    parent = cli.json("resource", "provider", "create", name)
    assert parent["name"] == name
    assert parent["generation"] == 0
    assert parent["root_provider_uuid"] == parent["uuid"]
    assert parent["parent_provider_uuid"] is None
    child = cli.json("resource", "provider", "create", unique("cli-child-"),
                     "--parent-provider", parent["uuid"])
    assert child["parent_provider_uuid"] == parent["uuid"]
    assert child["root_provider_uuid"] == parent["uuid"]

    shown = cli.json("resource", "provider", "show", parent["uuid"], "--allocations")
    assert shown["name"] == name
    assert shown["allocations"] == {}
    listed = cli.json("resource", "provider", "list", "--name", name)
    assert [p["uuid"] for p in listed] == [parent["uuid"]]
    tree = cli.json("resource", "provider", "list", "--in-tree", child["uuid"])
    assert {p["uuid"] for p in tree} == {parent["uuid"], child["uuid"]}
    assert cli.json("resource", "provider", "list", "--uuid", child["uuid"])[0]["name"] == (
        child["name"])

    renamed = unique("cli-renamed-")
    updated = cli.json("resource", "provider", "set", child["uuid"], "--name", renamed,
                       "--parent-provider", parent["uuid"])
    assert updated["name"] == renamed
    # Without --parent-provider the parent stays (the plugin leaves it out).
    kept = cli.json("resource", "provider", "set", child["uuid"], "--name", renamed)
    assert kept["parent_provider_uuid"] == parent["uuid"]

    duplicate = cli.fails("resource", "provider", "create", name)
    assert "HTTP 409" in duplicate
    assert name in duplicate

    cli.ok("resource", "provider", "delete", child["uuid"])
    cli.ok("resource", "provider", "delete", parent["uuid"])
    gone = cli.fails("resource", "provider", "show", parent["uuid"])
    assert f"No resource provider with uuid {parent['uuid']} found" in gone
    assert "HTTP 404" in gone


def test_resource_class_commands(cli: CLI) -> None:
    name = unique("CUSTOM_CLI_RC_")
    cli.ok("resource", "class", "create", name)
    assert cli.json("resource", "class", "show", name) == {"name": name}
    names = {rc["name"] for rc in cli.json("resource", "class", "list")}
    assert {name, "VCPU", "MEMORY_MB", "DISK_GB"} <= names
    # 1.7: `set` creates or confirms.
    other = unique("CUSTOM_CLI_SET_")
    cli.ok("resource", "class", "set", other)
    cli.ok("resource", "class", "set", other)
    assert cli.json("resource", "class", "show", other) == {"name": other}
    standard = cli.fails("resource", "class", "delete", "VCPU")
    assert "HTTP 400" in standard
    cli.ok("resource", "class", "delete", name)
    cli.ok("resource", "class", "delete", other)
    assert "HTTP 404" in cli.fails("resource", "class", "show", name)


def test_trait_commands(cli: CLI) -> None:
    trait = unique("CUSTOM_CLI_TRAIT_")
    cli.ok("trait", "create", trait)
    assert cli.json("trait", "show", trait) == {"name": trait}
    listed = cli.json("trait", "list", "--name", f"startswith:{trait[:-2]}")
    assert {"name": trait} in listed
    assert len(cli.json("trait", "list")) > 100  # the standard traits are there

    rp = cli.json("resource", "provider", "create", unique("cli-traits-"))["uuid"]
    assigned = cli.json("resource", "provider", "trait", "set", rp,
                        "--trait", trait, "--trait", "HW_CPU_X86_AVX2")
    assert {t["name"] for t in assigned} == {trait, "HW_CPU_X86_AVX2"}
    assert {t["name"] for t in cli.json("resource", "provider", "trait", "list", rp)} == {
        trait, "HW_CPU_X86_AVX2"}
    associated = cli.json("trait", "list", "--associated", "--name", f"in:{trait}")
    assert associated == [{"name": trait}]
    in_use = cli.fails("trait", "delete", trait)
    assert "HTTP 409" in in_use
    cli.ok("resource", "provider", "trait", "delete", rp)
    assert cli.json("resource", "provider", "trait", "list", rp) == []
    cli.ok("trait", "delete", trait)
    assert "HTTP 404" in cli.fails("trait", "show", trait)
    cli.ok("resource", "provider", "delete", rp)


def test_inventory_commands(cli: CLI) -> None:
    rp = cli.json("resource", "provider", "create", unique("cli-inv-"))["uuid"]
    custom = unique("CUSTOM_CLI_INV_")
    cli.ok("resource", "class", "create", custom)
    written = cli.json("resource", "provider", "inventory", "set", rp,
                       "--resource", "VCPU=16", "--resource", "VCPU:allocation_ratio=2.0",
                       "--resource", "MEMORY_MB=8192", "--resource", "MEMORY_MB:max_unit=4096",
                       "--resource", f"{custom}=4")
    by_class = {row["resource_class"]: row for row in written}
    assert by_class["VCPU"]["total"] == 16
    assert by_class["VCPU"]["allocation_ratio"] == 2.0
    assert by_class["MEMORY_MB"]["max_unit"] == 4096
    assert by_class[custom]["total"] == 4

    listed = {row["resource_class"]: row
              for row in cli.json("resource", "provider", "inventory", "list", rp)}
    assert set(listed) == {"VCPU", "MEMORY_MB", custom}
    assert listed["VCPU"]["used"] == 0
    shown = cli.json("resource", "provider", "inventory", "show", rp, "MEMORY_MB")
    assert shown["total"] == 8192
    assert shown["max_unit"] == 4096

    updated = cli.json("resource", "provider", "inventory", "class", "set", rp, "VCPU",
                       "--total", "32", "--reserved", "2")
    assert updated["total"] == 32
    assert updated["reserved"] == 2
    amended = cli.json("resource", "provider", "inventory", "set", rp, "--amend",
                       "--resource", "DISK_GB=500")
    assert {row["resource_class"] for row in amended} == {"VCPU", "MEMORY_MB", custom, "DISK_GB"}
    cli.ok("resource", "provider", "inventory", "delete", rp, "--resource-class", custom)
    missing = cli.fails("resource", "provider", "inventory", "show", rp, custom)
    assert "No inventory of class" in missing
    assert "HTTP 404" in missing
    invalid = cli.fails("resource", "provider", "inventory", "class", "set", rp, "VCPU",
                        "--total", "0")
    assert "HTTP 400" in invalid
    cli.ok("resource", "provider", "inventory", "delete", rp)  # all of them (1.5+)
    assert cli.json("resource", "provider", "inventory", "list", rp) == []
    cli.ok("resource", "provider", "delete", rp)
    cli.ok("resource", "class", "delete", custom)


def test_aggregate_commands(cli: CLI) -> None:
    rp = cli.json("resource", "provider", "create", unique("cli-agg-"))
    aggregates = sorted(str(uuid.uuid4()) for _ in range(2))
    args = [arg for agg in aggregates for arg in ("--aggregate", agg)]
    written = cli.json("resource", "provider", "aggregate", "set", rp["uuid"], *args,
                       "--generation", str(rp["generation"]))
    assert sorted(row["uuid"] for row in written) == aggregates
    listed = cli.json("resource", "provider", "aggregate", "list", rp["uuid"])
    assert sorted(row["uuid"] for row in listed) == aggregates
    stale = cli.fails("resource", "provider", "aggregate", "set", rp["uuid"],
                      "--aggregate", aggregates[0], "--generation", str(rp["generation"]))
    assert "Resource provider's generation already changed" in stale
    members = cli.json("resource", "provider", "list", "--member-of", aggregates[1])
    assert [p["uuid"] for p in members] == [rp["uuid"]]
    current = cli.json("resource", "provider", "show", rp["uuid"])["generation"]
    cleared = cli.json("resource", "provider", "aggregate", "set", rp["uuid"],
                       "--generation", str(current))
    assert cleared == []
    cli.ok("resource", "provider", "delete", rp["uuid"])


def test_allocation_usage_and_candidate_commands(cli: CLI) -> None:
    trait = unique("CUSTOM_CLI_CAND_")
    cli.ok("trait", "create", trait)
    rp = cli.json("resource", "provider", "create", unique("cli-alloc-"))["uuid"]
    cli.ok("resource", "provider", "inventory", "set", rp,
           "--resource", "VCPU=8", "--resource", "MEMORY_MB=4096")
    cli.ok("resource", "provider", "trait", "set", rp, "--trait", trait)
    project, user = str(uuid.uuid4()), str(uuid.uuid4())
    consumer = str(uuid.uuid4())

    written = cli.json("resource", "provider", "allocation", "set", consumer,
                       "--allocation", f"rp={rp},VCPU=2,MEMORY_MB=1024",
                       "--project-id", project, "--user-id", user,
                       "--consumer-type", "INSTANCE")
    assert len(written) == 1
    assert written[0]["resource_provider"] == rp
    assert written[0]["resources"] == {"VCPU": 2, "MEMORY_MB": 1024}
    assert written[0]["consumer_type"] == "INSTANCE"
    shown = cli.json("resource", "provider", "allocation", "show", consumer)
    assert shown[0]["resources"] == {"VCPU": 2, "MEMORY_MB": 1024}
    assert shown[0]["project_id"] == project
    assert shown[0]["user_id"] == user

    usage = {row["resource_class"]: row["usage"]
             for row in cli.json("resource", "provider", "usage", "show", rp)}
    assert usage == {"VCPU": 2, "MEMORY_MB": 1024}
    # 1.38+: project usages grouped by consumer type.
    project_usage = cli.json("resource", "usage", "show", project)
    assert project_usage == [{"resource_class": "INSTANCE",
                              "usage": {"VCPU": 2, "MEMORY_MB": 1024, "consumer_count": 1}}]
    shown_rp = cli.json("resource", "provider", "show", rp, "--allocations")
    assert shown_rp["allocations"][consumer]["resources"] == {"VCPU": 2, "MEMORY_MB": 1024}

    candidates = cli.json("allocation", "candidate", "list", "--resource", "VCPU=4",
                          "--required", trait)
    assert len(candidates) == 1
    assert candidates[0]["resource provider"] == rp
    assert candidates[0]["allocation"] == "VCPU=4"
    assert "VCPU=2/8" in candidates[0]["inventory used/capacity"]
    assert trait in candidates[0]["traits"]
    none_left = cli.json("allocation", "candidate", "list", "--resource", "VCPU=7",
                         "--required", trait)
    assert none_left == []

    too_much = cli.fails("resource", "provider", "allocation", "set", str(uuid.uuid4()),
                         "--allocation", f"rp={rp},VCPU=7", "--project-id", project,
                         "--user-id", user, "--consumer-type", "INSTANCE")
    assert "HTTP 409" in too_much
    in_use = cli.fails("resource", "provider", "inventory", "delete", rp,
                       "--resource-class", "VCPU")
    assert "HTTP 409" in in_use

    remaining = cli.json("resource", "provider", "allocation", "unset", consumer,
                         "--provider", rp, "--resource-class", "MEMORY_MB")
    assert remaining[0]["resources"] == {"VCPU": 2}
    cli.ok("resource", "provider", "allocation", "delete", consumer)
    assert cli.json("resource", "provider", "allocation", "show", consumer) == []
    assert cli.json("resource", "provider", "usage", "show", rp) == [
        {"resource_class": "VCPU", "usage": 0}, {"resource_class": "MEMORY_MB", "usage": 0}]
    cli.ok("resource", "provider", "delete", rp)
    cli.ok("trait", "delete", trait)


# ---------------------------------------------------------------- openstacksdk

@pytest.fixture
def placement(server: LiveServer) -> Any:
    from openstack import connection

    conn = connection.Connection(
        auth_type="admin_token",
        auth={"endpoint": server.url, "token": "admin"},
        placement_api_version=VERSION,
    )
    try:
        yield conn.placement
    finally:
        conn.close()


def test_sdk_providers_classes_traits(placement: Any) -> None:
    name = unique("sdk-rp-")
    rp = placement.create_resource_provider(name=name)
    assert rp.name == name
    assert rp.generation == 0
    assert rp.root_provider_id == rp.id
    assert placement.get_resource_provider(rp.id).name == name
    assert [p.id for p in placement.resource_providers(name=name)] == [rp.id]
    renamed = placement.update_resource_provider(rp, name=name + "-renamed")
    assert renamed.name == name + "-renamed"
    assert placement.find_resource_provider(name + "-renamed").id == rp.id

    rc = placement.create_resource_class(name=unique("CUSTOM_SDK_RC_"))
    assert placement.get_resource_class(rc.name).name == rc.name
    assert rc.name in {c.name for c in placement.resource_classes()}

    trait = placement.create_trait(unique("CUSTOM_SDK_TRAIT_"))
    assert placement.get_trait(trait.name).id == trait.name  # 204, no body
    assert [t.name for t in placement.traits(name=f"startswith:{trait.name}")] == [trait.name]

    placement.delete_trait(trait.name)
    placement.delete_resource_class(rc.name)
    placement.delete_resource_provider(rp.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        placement.get_resource_provider(rp.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        placement.get_trait(trait.name)


def test_sdk_inventories_aggregates_allocations(placement: Any) -> None:
    rp = placement.create_resource_provider(name=unique("sdk-claims-"))
    inventory = placement.create_resource_provider_inventory(
        rp.id, resource_class="VCPU", total=8)
    assert inventory.total == 8
    assert inventory.resource_provider_generation == 1
    assert [(i.resource_class, i.total)
            for i in placement.resource_provider_inventories(rp.id)] == [("VCPU", 8)]
    # The proxy sends the generation it holds; pass the current one explicitly
    # (the reference rejects a null generation just the same).
    inventory = placement.update_resource_provider_inventory(
        inventory, resource_provider=rp.id, total=16,
        resource_provider_generation=inventory.resource_provider_generation)
    assert inventory.total == 16
    assert placement.get_resource_provider_inventory(
        inventory, resource_provider=rp.id).total == 16

    aggregate = str(uuid.uuid4())
    current = placement.get_resource_provider(rp.id)
    assert placement.set_resource_provider_aggregates(current, aggregate).aggregates == [
        aggregate]
    assert placement.fetch_resource_provider_aggregates(rp.id).aggregates == [aggregate]

    consumer, project = str(uuid.uuid4()), str(uuid.uuid4())
    placement.update_allocation(
        consumer, allocations={rp.id: {"resources": {"VCPU": 3}}}, project_id=project,
        user_id="sdk-user", consumer_generation=None, consumer_type="INSTANCE")
    allocation = placement.get_allocation(consumer)
    assert allocation.allocations[rp.id]["resources"] == {"VCPU": 3}
    assert allocation.consumer_generation == 1
    assert placement.fetch_resource_provider_usages(rp.id).usages == {"VCPU": 3}
    usages = list(placement.usages(project_id=project))
    assert [(u.consumer_type, u.consumer_count, u.resources) for u in usages] == [
        ("INSTANCE", 1, {"VCPU": 3})]
    candidates = list(placement.allocation_candidates(resources="VCPU:13",
                                                      member_of=aggregate))
    assert [c.allocations for c in candidates] == [{rp.id: {"resources": {"VCPU": 13}}}]
    assert list(placement.allocation_candidates(resources="VCPU:14",
                                                member_of=aggregate)) == []

    stale = placement.get_allocation(consumer)
    with pytest.raises(openstack.exceptions.ConflictException):
        placement.update_allocation(
            consumer, allocations={rp.id: {"resources": {"VCPU": 1}}}, project_id=project,
            user_id="sdk-user", consumer_generation=0, consumer_type="INSTANCE")
    assert stale.consumer_generation == 1

    placement.delete_allocation(consumer)
    assert placement.fetch_resource_provider_usages(rp.id).usages == {"VCPU": 0}
    placement.delete_resource_provider_inventory(inventory, resource_provider=rp.id)
    assert list(placement.resource_provider_inventories(rp.id)) == []
    placement.delete_resource_provider(rp.id)
