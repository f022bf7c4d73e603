"""``/resource_providers``: create, show, update (re-parenting), delete and the list filters.

Traits, aggregates, inventories and allocations are written straight into the
database here so that these tests depend only on the provider endpoints.
"""

import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models
from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, app_client, code, detail, make_provider, microversion
from tests.databases import TEST_SERVER_URL, is_mysql
from tests.seeding import add_aggregate, add_allocation, add_inventory, add_traits

# Strings compare as the database's collation compares them: exactly on SQLite and
# PostgreSQL, ignoring case on MySQL/MariaDB (utf8mb4_general_ci), as the reference.
CASE_INSENSITIVE = is_mysql(TEST_SERVER_URL)

LM_PATTERN = r"^\w+, \d+ \w+ \d{4} [\d:]+ GMT$"


@dataclass
class Env:
    client: httpx.AsyncClient
    engine: AsyncEngine


@pytest.fixture
def env(client: httpx.AsyncClient, engine: AsyncEngine) -> Env:
    return Env(client, engine)


async def listed(client: httpx.AsyncClient, query: str, version: str = "latest") -> set[str]:
    response = await client.get(f"/resource_providers?{query}", headers=microversion(version))
    assert response.status_code == 200, response.text
    return {rp["name"] for rp in response.json()["resource_providers"]}


# -- create / show ---------------------------------------------------------------

async def test_create_old_microversion_is_201_empty(env: Env) -> None:
    uuid = str(uuidlib.uuid4())
    response = await env.client.post(
        "/resource_providers", json={"name": "rp", "uuid": uuid}, headers=microversion("1.19")
    )
    assert response.status_code == 201
    assert response.content == b""
    assert "content-type" not in response.headers
    assert response.headers["location"] == f"http://placement.test/resource_providers/{uuid}"


async def test_create_returns_provider_and_normalises_uuid(env: Env) -> None:
    given = "{4E8E5957649F477B9E5BF1F75B21C03C}"
    response = await env.client.post("/resource_providers", json={"name": "n", "uuid": given})
    assert response.status_code == 200
    body = response.json()
    uuid = "4e8e5957-649f-477b-9e5b-f1f75b21c03c"
    assert body["uuid"] == uuid
    assert body["generation"] == 0
    assert body["parent_provider_uuid"] is None
    assert body["root_provider_uuid"] == uuid
    assert [link["rel"] for link in body["links"]] == [
        "self", "inventories", "usages", "aggregates", "traits", "allocations"
    ]
    assert body["links"][0]["href"] == f"/resource_providers/{uuid}"
    assert response.headers["location"].endswith(f"/resource_providers/{uuid}")
    assert response.headers["cache-control"] == "no-cache"
    assert "last-modified" in response.headers

    dup_uuid = await env.client.post(
        "/resource_providers", json={"name": "other", "uuid": uuid.replace("-", "")}
    )
    assert dup_uuid.status_code == 409
    assert f"Conflicting resource provider uuid: {uuid} already exists." in detail(dup_uuid)
    assert code(dup_uuid) == "placement.duplicate_name"
    dup_name = await env.client.post("/resource_providers", json={"name": "n"})
    assert dup_name.status_code == 409
    assert "Conflicting resource provider name: n already exists." in detail(dup_name)


async def test_create_generates_uuid(env: Env) -> None:
    response = await env.client.post("/resource_providers", json={"name": "auto"})
    assert response.status_code == 200
    assert uuidlib.UUID(response.json()["uuid"]).version == 4


@pytest.mark.parametrize(
    ("body", "version", "expected"),
    [
        ({"name": "x", "uuid": ""}, "latest", "'' is not a 'uuid'"),
        ({"name": "x", "uuid": None}, "latest", "None is not of type 'string'"),
        ({"name": "x" * 201}, "latest", "Failed validating 'maxLength'"),
        ({"name": 3}, "latest", "3 is not of type 'string'"),
        ({}, "latest", "'name' is a required property"),
        ({"name": "x", "parent_provider_uuid": None}, "1.13", "Additional properties"),
        ({"name": "x", "parent_provider_uuid": "nope"}, "latest", "'nope' is not a 'uuid'"),
    ],
)
async def test_create_schema_errors(
    env: Env, body: dict[str, Any], version: str, expected: str
) -> None:
    response = await env.client.post(
        "/resource_providers", json=body, headers=microversion(version)
    )
    assert response.status_code == 400
    assert "JSON does not validate" in detail(response)
    assert expected in detail(response)


async def test_create_semantic_errors(env: Env) -> None:
    uuid = str(uuidlib.uuid4())
    response = await env.client.post("/resource_providers", json={"name": "", "uuid": uuid})
    assert response.status_code == 400
    assert (
        f'Unable to create resource provider "", {uuid}: Object action create failed because: '
        "name is required" in detail(response)
    )
    response = await env.client.post(
        "/resource_providers", json={"name": "c", "uuid": uuid, "parent_provider_uuid": uuid}
    )
    assert "parent provider UUID cannot be same as UUID" in detail(response)
    response = await env.client.post(
        "/resource_providers",
        json={"name": "c", "uuid": uuid, "parent_provider_uuid": str(uuidlib.uuid4())},
    )
    assert response.status_code == 400
    assert "parent provider UUID does not exist." in detail(response)


async def test_child_gets_parents_root(env: Env) -> None:
    root = await make_provider(env.client, name="root")
    child = await make_provider(env.client, name="child", parent=root)
    grandchild = await make_provider(env.client, name="grandchild", parent=child)
    body = (await env.client.get(f"/resource_providers/{grandchild}")).json()
    assert body["parent_provider_uuid"] == child
    assert body["root_provider_uuid"] == root


async def test_show_by_version(env: Env) -> None:
    uuid = await make_provider(env.client, name="shown")
    expected_links = {"1.0": 3, "1.1": 4, "1.6": 5, "1.10": 5, "1.11": 6}
    for version, count in expected_links.items():
        shown = await env.client.get(f"/resource_providers/{uuid}", headers=microversion(version))
        body = shown.json()
        assert len(body["links"]) == count
        assert set(body) == {"uuid", "name", "generation", "links"}
    old = await env.client.get(f"/resource_providers/{uuid}", headers=microversion("1.14"))
    assert "cache-control" not in old.headers
    assert "last-modified" not in old.headers
    assert set(old.json()) >= {"parent_provider_uuid", "root_provider_uuid"}
    new = await env.client.get(f"/resource_providers/{uuid}", headers=microversion("1.15"))
    assert new.headers["cache-control"] == "no-cache"
    missing = await env.client.get("/resource_providers/random_sauce")
    assert missing.status_code == 404
    assert "No resource provider with uuid random_sauce found" in detail(missing)
    upper = await env.client.get(f"/resource_providers/{uuid.upper()}")
    assert upper.status_code == (200 if CASE_INSENSITIVE else 404)


async def test_links_carry_mount_prefix(settings: Settings) -> None:
    async with app_client(settings, ADMIN_LATEST, "http://placement.test/placement",
                          root_path="/placement") as client:
        response = await client.post("/placement/resource_providers", json={"name": "p"})
        assert response.status_code == 200, response.text
        href = response.json()["links"][0]["href"]
        assert href.startswith("/placement/resource_providers/")


# -- update ----------------------------------------------------------------------

async def test_rename_keeps_generation_and_last_modified_quirk(env: Env) -> None:
    root = await make_provider(env.client, name="root")
    child = await make_provider(env.client, name="child", parent=root)
    renamed = await env.client.put(f"/resource_providers/{root}", json={"name": "root2"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "root2"
    assert renamed.json()["generation"] == 0
    assert "location" not in renamed.headers
    # A root was stamped at creation; a child never updated has no Last-Modified.
    assert "last-modified" in renamed.headers
    child_put = await env.client.put(f"/resource_providers/{child}", json={"name": "child2"})
    assert child_put.status_code == 200
    assert child_put.headers["cache-control"] == "no-cache"
    assert "last-modified" not in child_put.headers
    again = await env.client.put(f"/resource_providers/{child}", json={"name": "child3"})
    assert "last-modified" in again.headers
    # An empty name is accepted on update (reference quirk).
    empty = await env.client.put(f"/resource_providers/{child}", json={"name": ""})
    assert empty.status_code == 200
    assert empty.json()["name"] == ""


async def test_update_errors(env: Env) -> None:
    first = await make_provider(env.client, name="first")
    await make_provider(env.client, name="second")
    response = await env.client.put(f"/resource_providers/{first}", json={"name": "second"})
    assert response.status_code == 409
    assert code(response) == "placement.duplicate_name"
    assert "Conflicting resource provider second already exists." in detail(response)
    response = await env.client.put(
        f"/resource_providers/{first}", json={"name": "x", "uuid": first}
    )
    assert response.status_code == 400
    assert "Additional properties are not allowed" in detail(response)
    response = await env.client.put(
        f"/resource_providers/{first}",
        json={"name": "x", "parent_provider_uuid": first},
        headers=microversion("1.13"),
    )
    assert response.status_code == 400
    # Lookup (404) comes before the body check.
    response = await env.client.put("/resource_providers/nope", json={"bad": 1})
    assert response.status_code == 404
    response = await env.client.put(
        f"/resource_providers/{first}", content=b"x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


async def test_parenting_rules(env: Env) -> None:
    root = await make_provider(env.client, name="root")
    other = await make_provider(env.client, name="other")
    child = await make_provider(env.client, name="child", parent=root)
    leaf = await make_provider(env.client, name="leaf", parent=child)
    url = f"/resource_providers/{child}"

    same = await env.client.put(
        url, json={"name": "child", "parent_provider_uuid": root}, headers=microversion("1.36")
    )
    assert same.status_code == 200
    response = await env.client.put(
        url, json={"name": "child", "parent_provider_uuid": other}, headers=microversion("1.36")
    )
    assert response.status_code == 400
    assert (
        f"Unable to save resource provider {child}: Object action update failed because: "
        "re-parenting a provider is not currently allowed." in detail(response)
    )
    response = await env.client.put(
        url, json={"name": "child", "parent_provider_uuid": None}, headers=microversion("1.36")
    )
    assert "un-parenting a provider is not currently allowed." in detail(response)
    response = await env.client.put(
        url, json={"name": "child", "parent_provider_uuid": str(uuidlib.uuid4())}
    )
    assert "parent provider UUID does not exist." in detail(response)
    for target in (child, leaf):
        response = await env.client.put(
            url, json={"name": "child", "parent_provider_uuid": target}
        )
        assert response.status_code == 400
        assert "creating loop in the provider tree is not allowed." in detail(response)

    # 1.37: re-parent the subtree under ``other``; the leaf follows.
    moved = await env.client.put(url, json={"name": "child", "parent_provider_uuid": other})
    assert moved.status_code == 200
    assert moved.json()["root_provider_uuid"] == other
    assert moved.json()["generation"] == 0
    leaf_body = (await env.client.get(f"/resource_providers/{leaf}")).json()
    assert leaf_body["root_provider_uuid"] == other
    assert await listed(env.client, f"in_tree={root}") == {"root"}
    assert await listed(env.client, f"in_tree={leaf}") == {"other", "child", "leaf"}

    # Un-parent: the child becomes a root of its own subtree.
    freed = await env.client.put(url, json={"name": "child", "parent_provider_uuid": None})
    assert freed.status_code == 200
    assert freed.json()["parent_provider_uuid"] is None
    assert freed.json()["root_provider_uuid"] == child
    assert await listed(env.client, f"in_tree={leaf}") == {"child", "leaf"}

    # A root may take a parent at 1.14+; omitting the parent keeps it.
    adopt = await env.client.put(
        f"/resource_providers/{other}",
        json={"name": "other", "parent_provider_uuid": root},
        headers=microversion("1.14"),
    )
    assert adopt.status_code == 200
    keep = await env.client.put(f"/resource_providers/{other}", json={"name": "other2"})
    assert keep.json()["parent_provider_uuid"] == root


# -- delete ----------------------------------------------------------------------

async def test_delete_rules(env: Env) -> None:
    parent = await make_provider(env.client, name="parent")
    child = await make_provider(env.client, name="child", parent=parent)
    response = await env.client.delete(f"/resource_providers/{parent}")
    assert response.status_code == 409
    assert code(response) == "placement.resource_provider.cannot_delete_parent"
    assert (
        f"Unable to delete parent resource provider {parent}: It has child resource providers."
        in detail(response)
    )
    await add_inventory(env.engine, child, "VCPU", 4)
    await add_allocation(env.engine, child, "VCPU", 1)
    response = await env.client.delete(f"/resource_providers/{child}")
    assert response.status_code == 409
    assert code(response) == "placement.resource_provider.inuse"
    assert "Resource provider has allocations." in detail(response)

    lonely = await make_provider(env.client, name="lonely")
    await add_inventory(env.engine, lonely, "VCPU", 4)
    await add_traits(env.engine, lonely, "HW_CPU_X86_SSE")
    await add_aggregate(env.engine, lonely, str(uuidlib.uuid4()))
    response = await env.client.delete(f"/resource_providers/{lonely}")
    assert response.status_code == 204
    assert response.content == b""
    lonely_id_gone = await env.client.get(f"/resource_providers/{lonely}")
    assert lonely_id_gone.status_code == 404
    async with env.engine.connect() as conn:
        for table in (
            models.inventories,
            models.resource_provider_traits,
            models.resource_provider_aggregates,
        ):
            rows = (await conn.execute(select(table.c.resource_provider_id))).all()
            assert len(rows) == (1 if table is models.inventories else 0)
    response = await env.client.delete(f"/resource_providers/{lonely}")
    assert response.status_code == 404
    assert f"No resource provider with uuid {lonely} found for delete" in detail(response)


# -- list ------------------------------------------------------------------------

async def test_list_basic_and_query_schema(env: Env) -> None:
    empty = await env.client.get("/resource_providers", headers=microversion("1.15"))
    assert empty.json() == {"resource_providers": []}
    assert empty.headers["cache-control"] == "no-cache"
    uuid = await make_provider(env.client, name="alpha")
    await make_provider(env.client, name="beta")
    assert await listed(env.client, "") == {"alpha", "beta"}
    assert await listed(env.client, "name=alpha") == {"alpha"}
    assert await listed(env.client, "name=") == {"alpha", "beta"}
    assert await listed(env.client, f"uuid={uuid.upper()}") == (
        {"alpha"} if CASE_INSENSITIVE else set())
    assert await listed(env.client, f"uuid={uuid}") == {"alpha"}
    assert await listed(env.client, f"uuid=junk&uuid={uuid}") == {"alpha"}

    response = await env.client.get("/resource_providers?uuid=spameggs")
    assert response.status_code == 400
    assert "Invalid query string parameters: 'spameggs' is not a 'uuid'" in detail(response)
    response = await env.client.get(f"/resource_providers?uuid={uuid.replace('-', '')}")
    assert response.status_code == 400
    response = await env.client.get("/resource_providers?spam=eggs&ham=1")
    assert (
        "Invalid query string parameters: Additional properties are not allowed "
        "('ham', 'spam' were unexpected)" in detail(response)
    )
    for version, key in (("1.2", "member_of"), ("1.3", "resources"), ("1.13", "in_tree"),
                         ("1.17", "required")):
        response = await env.client.get(
            f"/resource_providers?{key}=x", headers=microversion(version)
        )
        assert response.status_code == 400
        assert f"('{key}' was unexpected)" in detail(response)
    response = await env.client.get("/resource_providers", headers={"accept": "text/plain"})
    assert response.status_code == 406


async def test_list_resources_capacity(env: Env) -> None:
    big = await make_provider(env.client, name="big")
    small = await make_provider(env.client, name="small")
    # capacity (8 - 2) * 2.0 = 12, 4 used; max_unit 6, step 2
    await add_inventory(
        env.engine, big, "VCPU", 8, reserved=2, ratio=2.0, max_unit=6, step_size=2
    )
    await add_allocation(env.engine, big, "VCPU", 4)
    await add_inventory(env.engine, big, "MEMORY_MB", 1024, min_unit=256)
    await add_inventory(env.engine, small, "VCPU", 4)
    await add_inventory(env.engine, small, "DISK_GB", 100, reserved=100)

    assert await listed(env.client, "resources=VCPU:2") == {"big", "small"}
    assert await listed(env.client, "resources=VCPU:3") == {"small"}
    assert await listed(env.client, "resources=VCPU:6") == {"big"}
    assert await listed(env.client, "resources=VCPU:8") == set()
    assert await listed(env.client, "resources=VCPU:2,MEMORY_MB:256") == {"big"}
    assert await listed(env.client, "resources=MEMORY_MB:128") == set()
    assert await listed(env.client, "resources=DISK_GB:1") == set()
    assert await listed(env.client, "resources=VCPU:99999999999") == set()
    # Repeated: the last value counts.
    assert await listed(env.client, "resources=DISK_GB:1&resources=VCPU:3") == {"small"}

    response = await env.client.get("/resources_providers?resources=VCPU:1,FOO:1")
    assert response.status_code == 404
    response = await env.client.get("/resource_providers?resources=VCPU:1,FOO:1")
    assert response.status_code == 400
    assert (
        "Invalid resource class in resources parameter: No such resource class FOO."
        in detail(response)
    )
    response = await env.client.get("/resource_providers?resources=VCPU:0")
    assert "Requested resource VCPU requires amount >= 1. Got: 0." in detail(response)


async def test_list_required_traits(env: Env) -> None:
    one = await make_provider(env.client, name="one")
    two = await make_provider(env.client, name="two")
    await make_provider(env.client, name="three")
    await add_traits(env.engine, one, "HW_CPU_X86_SSE", "HW_CPU_X86_AVX")
    await add_traits(env.engine, two, "HW_CPU_X86_AVX", "STORAGE_DISK_SSD")

    assert await listed(env.client, "required=HW_CPU_X86_AVX") == {"one", "two"}
    assert await listed(env.client, "required=HW_CPU_X86_AVX,HW_CPU_X86_SSE") == {"one"}
    assert await listed(env.client, "required=!HW_CPU_X86_SSE") == {"two", "three"}
    assert await listed(env.client, "required=!!HW_CPU_X86_SSE") == {"two", "three"}
    assert await listed(env.client, "required=HW_CPU_X86_AVX,!STORAGE_DISK_SSD") == {"one"}
    assert await listed(env.client, "required=HW_CPU_X86_SSE,!HW_CPU_X86_SSE") == set()
    assert await listed(
        env.client, "required=in:HW_CPU_X86_SSE,STORAGE_DISK_SSD"
    ) == {"one", "two"}
    assert await listed(
        env.client,
        "required=in:HW_CPU_X86_SSE,STORAGE_DISK_SSD&required=!HW_CPU_X86_SSE",
    ) == {"two"}
    # Below 1.39 only the last occurrence counts.
    assert await listed(
        env.client, "required=HW_CPU_X86_SSE&required=STORAGE_DISK_SSD", "1.38"
    ) == {"two"}
    assert await listed(
        env.client, "required=HW_CPU_X86_SSE&required=STORAGE_DISK_SSD"
    ) == set()

    response = await env.client.get("/resource_providers?required=HW_CPU_X86_SSE,BOGUS")
    assert response.status_code == 400
    assert 'Invalid trait(s) in "required" parameter: No such trait(s): BOGUS.' in detail(
        response
    )
    response = await env.client.get("/resource_providers?required=!BOGUS2")
    assert "No such trait(s): BOGUS2." in detail(response)
    response = await env.client.get(
        "/resource_providers?required=!HW_CPU_X86_SSE", headers=microversion("1.21")
    )
    assert (
        "Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. "
        "Got: !HW_CPU_X86_SSE" in detail(response)
    )


async def test_list_member_of(env: Env) -> None:
    agg_a, agg_b, agg_c = (str(uuidlib.uuid4()) for _ in range(3))
    one = await make_provider(env.client, name="one")
    two = await make_provider(env.client, name="two")
    await make_provider(env.client, name="three")
    await add_aggregate(env.engine, one, agg_a)
    await add_aggregate(env.engine, two, agg_a)
    await add_aggregate(env.engine, two, agg_b)

    assert await listed(env.client, f"member_of={agg_a}", "1.3") == {"one", "two"}
    assert await listed(env.client, f"member_of=in:{agg_b},{agg_c}") == {"two"}
    assert await listed(env.client, f"member_of={agg_a}&member_of={agg_b}") == {"two"}
    assert await listed(env.client, f"member_of=!{agg_b}") == {"one", "three"}
    assert await listed(env.client, f"member_of=!in:{agg_a},{agg_c}") == {"three"}
    assert await listed(env.client, f"member_of={agg_c}") == set()
    assert await listed(env.client, f"member_of={agg_a}&member_of=!{agg_a}") == set()
    # Aggregates are compared as stored strings (in the database's collation).
    assert await listed(env.client, f"member_of={agg_a.upper()}") == (
        {"one", "two"} if CASE_INSENSITIVE else set())

    response = await env.client.get(
        f"/resource_providers?member_of={agg_a}&member_of={agg_b}", headers=microversion("1.23")
    )
    assert "Multiple member_of parameters are not supported" in detail(response)
    response = await env.client.get(
        f"/resource_providers?member_of=!{agg_a}", headers=microversion("1.31")
    )
    assert "Forbidden member_of parameters are not supported" in detail(response)
    response = await env.client.get("/resource_providers?member_of=not-a-uuid")
    assert "Expected 'member_of' parameter to contain valid UUID(s). Got: not-a-uuid" in detail(
        response
    )


async def test_list_in_tree_and_combined_filters(env: Env) -> None:
    root = await make_provider(env.client, name="root")
    child = await make_provider(env.client, name="child", parent=root)
    other = await make_provider(env.client, name="other")
    await add_traits(env.engine, child, "STORAGE_DISK_SSD")
    await add_traits(env.engine, other, "STORAGE_DISK_SSD")
    await add_inventory(env.engine, other, "DISK_GB", 100)

    assert await listed(env.client, f"in_tree={child}") == {"root", "child"}
    assert await listed(env.client, f"in_tree={uuidlib.uuid4()}") == set()
    assert await listed(env.client, f"in_tree={child}&required=STORAGE_DISK_SSD") == {"child"}
    assert await listed(
        env.client, "required=STORAGE_DISK_SSD&resources=DISK_GB:10"
    ) == {"other"}
    response = await env.client.get("/resource_providers?in_tree=")
    assert response.status_code == 400
    assert "'' is not a 'uuid'" in detail(response)
    response = await env.client.get(
        f"/resource_providers?in_tree={root}", headers=microversion("1.15")
    )
    assert len(response.json()["resource_providers"]) == 2
    assert "last-modified" in response.headers


async def test_trailing_slash_is_not_found(env: Env) -> None:
    uuid = await make_provider(env.client, name="slash")
    for path in ("/resource_providers/", f"/resource_providers/{uuid}/"):
        response = await env.client.get(path)
        assert response.status_code == 404
