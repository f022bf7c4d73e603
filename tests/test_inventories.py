"""Inventories (spec §5) and provider usages (§11.1).

Providers and allocations are written straight into the database so these
tests do not depend on the provider and allocation endpoints.
"""

import asyncio
import functools
import uuid as uuidlib
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.http import utcnow
from app.db.database import Database
from app.db.repositories.inventories import InventoryRepository
from app.exceptions import InventoryInUse, UnknownResourceClass
from app.records import InventoryRecord
from app.services.lookups import require_provider
from tests.api_helpers import code, detail
from tests.seeding import add_allocation, insert_provider

ProviderFactory = Callable[[], Awaitable[str]]
VCPU, DISK_GB = 0, 2


@pytest.fixture
def db(engine: AsyncEngine) -> AsyncEngine:
    """The app's engine, under the name these tests use."""
    return engine


@pytest.fixture
def provider(engine: AsyncEngine) -> ProviderFactory:
    return functools.partial(insert_provider, engine)


async def test_post_get_and_defaults(client: httpx.AsyncClient, provider: ProviderFactory) -> None:
    rp = await provider()
    empty = await client.get(f"/resource_providers/{rp}/inventories")
    assert empty.json() == {"resource_provider_generation": 0, "inventories": {}}
    assert "last-modified" not in empty.headers
    assert empty.headers["cache-control"] == "no-cache"

    created = await client.post(
        f"/resource_providers/{rp}/inventories",
        json={"resource_class": "VCPU", "total": 8, "allocation_ratio": 16,
              "resource_provider_generation": 99},
    )
    assert created.status_code == 201
    assert created.headers["location"] == (
        f"http://placement.test/resource_providers/{rp}/inventories/VCPU"
    )
    assert "last-modified" in created.headers
    # Write responses echo the request (16 stays an integer), defaults filled in.
    assert created.text.count('"allocation_ratio":16,') == 1
    assert created.json() == {
        "total": 8, "reserved": 0, "min_unit": 1, "max_unit": 2147483647, "step_size": 1,
        "allocation_ratio": 16, "resource_provider_generation": 1,
    }
    shown = await client.get(f"/resource_providers/{rp}/inventories/VCPU")
    assert shown.status_code == 200
    assert '"allocation_ratio":16.0' in shown.text
    assert shown.json()["resource_provider_generation"] == 1
    assert "last-modified" in shown.headers
    old = await client.get(
        f"/resource_providers/{rp}/inventories/VCPU",
        headers={"openstack-api-version": "placement 1.14"},
    )
    assert "last-modified" not in old.headers
    assert "cache-control" not in old.headers

    listed = (await client.get(f"/resource_providers/{rp}/inventories")).json()
    assert listed["resource_provider_generation"] == 1
    assert listed["inventories"]["VCPU"]["allocation_ratio"] == 16.0

    again = await client.post(
        f"/resource_providers/{rp}/inventories", json={"resource_class": "VCPU", "total": 8}
    )
    assert again.status_code == 409
    assert code(again) == "placement.concurrent_update"
    assert "Update conflict" in detail(again)


async def test_post_errors(client: httpx.AsyncClient, provider: ProviderFactory) -> None:
    rp = await provider()
    url = f"/resource_providers/{rp}/inventories"
    missing = await client.post(
        "/resource_providers/7260669a-e3d4-4867-aaa7-683e2ab6958c/inventories",
        content=b"{", headers={"content-type": "application/json"},
    )
    assert missing.status_code == 404  # provider lookup precedes body parsing

    low = await client.post(url, json={"resource_class": "DISK_GB", "total": 0})
    assert low.status_code == 400
    assert "JSON does not validate: 0 is less than the minimum of 1" in detail(low)
    assert "Failed validating 'minimum' in schema['properties']['total']" in detail(low)

    high = await client.post(url, json={"resource_class": "DISK_GB", "total": 2147483648})
    assert "Failed validating 'maximum'" in detail(high)

    ratio = await client.post(
        url, json={"resource_class": "DISK_GB", "total": 5, "allocation_ratio": 3.40282e39}
    )
    assert ratio.status_code == 400
    assert "Failed validating 'maximum'" in detail(ratio)

    boolean = await client.post(url, json={"resource_class": "DISK_GB", "total": True})
    assert "True is not of type 'integer'" in detail(boolean)

    no_total = await client.post(url, json={"resource_class": "DISK_GB", "bogus": 1})
    assert "'total' is a required property" in detail(no_total)

    pattern = await client.post(url, json={"resource_class": "bad_class", "total": 5})
    assert "does not match" in detail(pattern)

    unknown = await client.post(url, json={"resource_class": "NO_CLASS_14", "total": 5})
    assert unknown.status_code == 400
    assert detail(unknown).strip().endswith(
        f"Unable to create inventory for resource provider {rp}: "
        "No such resource class NO_CLASS_14."
    )

    capacity = await client.post(
        url, json={"resource_class": "DISK_GB", "total": 256, "reserved": 512}
    )
    assert capacity.status_code == 400
    assert "The reserved value is greater than total." in detail(capacity)

    wrong_type = await client.post(
        url, json={"resource_class": "DISK_GB", "total": 5},
        headers={"content-type": "text/plain"},
    )
    assert wrong_type.status_code == 415
    # Nothing was written.
    listed = (await client.get(url)).json()
    assert listed == {"resource_provider_generation": 0, "inventories": {}}


async def test_capacity_rule_by_version(
    client: httpx.AsyncClient, provider: ProviderFactory
) -> None:
    rp = await provider()
    url = f"/resource_providers/{rp}/inventories"
    body = {"resource_provider_generation": 0,
            "inventories": {"IPV4_ADDRESS": {"total": 253, "reserved": 253}}}
    old = await client.put(url, json=body, headers={"openstack-api-version": "placement 1.25"})
    assert old.status_code == 400
    assert "greater than or equal to total" in detail(old)
    new = await client.put(url, json=body, headers={"openstack-api-version": "placement 1.26"})
    assert new.status_code == 200
    assert new.json()["resource_provider_generation"] == 1
    over = await client.put(
        url,
        json={"resource_provider_generation": 1,
              "inventories": {"IPV4_ADDRESS": {"total": 253, "reserved": 254}}},
    )
    assert over.status_code == 400
    assert "The reserved value is greater than total." in detail(over)
    negative_ratio = await client.put(
        f"{url}/IPV4_ADDRESS",
        json={"resource_provider_generation": 1, "total": 10, "allocation_ratio": -1},
    )
    assert negative_ratio.status_code == 400


async def test_put_all(client: httpx.AsyncClient, provider: ProviderFactory) -> None:
    rp = await provider()
    url = f"/resource_providers/{rp}/inventories"
    put = await client.put(
        url,
        json={"resource_provider_generation": 0,
              "inventories": {"DISK_GB": {"total": 1024, "step_size": 10,
                                          "resource_provider_generation": 42},
                              "VCPU": {"total": 8, "allocation_ratio": 2}}},
        headers={"openstack-api-version": "placement 1.15"},
    )
    assert put.status_code == 200
    assert "last-modified" in put.headers
    assert put.json() == {
        "resource_provider_generation": 1,
        "inventories": {
            "DISK_GB": {"total": 1024, "reserved": 0, "min_unit": 1, "max_unit": 2147483647,
                        "step_size": 10, "allocation_ratio": 1.0},
            "VCPU": {"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 2147483647,
                     "step_size": 1, "allocation_ratio": 2},
        },
    }
    stale = await client.put(url, json={"resource_provider_generation": 0, "inventories": {}})
    assert stale.status_code == 409
    assert code(stale) == "placement.concurrent_update"
    assert "resource provider generation conflict" in detail(stale)

    unknown = await client.put(
        url, json={"resource_provider_generation": 1, "inventories": {"house": {"total": 1}}}
    )
    assert unknown.status_code == 400
    assert "Unknown resource class in inventory for resource provider" in detail(unknown)
    assert "No such resource class house." in detail(unknown)

    nested = await client.put(
        url, json={"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 0}}}
    )
    assert "Failed validating 'minimum' in schema['properties']['inventories']" in detail(
        nested
    )

    # Same content again: generation still moves by one; DISK_GB removed.
    same = await client.put(
        url, json={"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 8}}}
    )
    assert same.json()["resource_provider_generation"] == 2
    listed = (await client.get(url)).json()
    assert list(listed["inventories"]) == ["VCPU"]

    emptied = await client.put(url, json={"resource_provider_generation": 2, "inventories": {}})
    assert emptied.status_code == 200
    assert emptied.json() == {"resource_provider_generation": 3, "inventories": {}}
    assert "last-modified" not in emptied.headers


async def test_put_and_delete_one(client: httpx.AsyncClient, provider: ProviderFactory) -> None:
    rp = await provider()
    url = f"/resource_providers/{rp}/inventories"
    await client.post(url, json={"resource_class": "DISK_GB", "total": 2048})

    changed = await client.put(
        f"{url}/DISK_GB", json={"resource_provider_generation": 1, "total": 2048, "reserved": 1}
    )
    assert changed.status_code == 200
    assert changed.json()["reserved"] == 1
    assert changed.json()["resource_provider_generation"] == 2

    stale = await client.put(
        f"{url}/DISK_GB", json={"resource_provider_generation": 1, "total": 2048}
    )
    assert stale.status_code == 409
    assert code(stale) == "placement.concurrent_update"

    absent = await client.put(
        f"{url}/MEMORY_MB", json={"resource_provider_generation": 2, "total": 2048}
    )
    assert absent.status_code == 400
    assert "No inventory record with resource class for resource provider" in detail(absent)

    unknown = await client.put(
        f"{url}/FOO", json={"resource_provider_generation": 2, "total": 2048}
    )
    assert unknown.status_code == 404
    assert "No such resource class FOO." in detail(unknown)

    with_class = await client.put(
        f"{url}/DISK_GB",
        json={"resource_provider_generation": 2, "total": 1, "resource_class": "DISK_GB"},
    )
    assert with_class.status_code == 400

    assert (await client.get(f"{url}/HOUSE")).status_code == 404
    gone = await client.delete(f"{url}/DISK_GB")
    assert gone.status_code == 204
    assert gone.content == b""
    assert "content-type" not in gone.headers
    again = await client.delete(f"{url}/DISK_GB")
    assert again.status_code == 404
    assert "No inventory of class DISK_GB found for delete" in detail(again)
    unknown_delete = await client.delete(f"{url}/FOO")
    assert unknown_delete.status_code == 404
    assert (await client.get(url)).json()["resource_provider_generation"] == 3


async def test_delete_all(client: httpx.AsyncClient, provider: ProviderFactory) -> None:
    rp = await provider()
    url = f"/resource_providers/{rp}/inventories"
    old = await client.delete(url, headers={"openstack-api-version": "placement 1.4"})
    assert old.status_code == 405
    assert old.headers["allow"] == "GET, POST, PUT, DELETE"
    missing = await client.delete(
        f"/resource_providers/{uuidlib.uuid4()}/inventories",
        headers={"openstack-api-version": "placement 1.5"},
    )
    assert missing.status_code == 404
    await client.post(url, json={"resource_class": "DISK_GB", "total": 2048})
    assert (await client.delete(url)).status_code == 204
    assert (await client.delete(url)).status_code == 204  # nothing left: still +1
    assert (await client.get(url)).json() == {
        "resource_provider_generation": 3, "inventories": {}
    }


async def test_in_use_rules(
    client: httpx.AsyncClient, provider: ProviderFactory, db: AsyncEngine
) -> None:
    rp = await provider()
    url = f"/resource_providers/{rp}/inventories"
    await client.put(
        url,
        json={"resource_provider_generation": 0,
              "inventories": {"DISK_GB": {"total": 2048}, "VCPU": {"total": 8},
                              "MEMORY_MB": {"total": 4096}}},
    )
    await add_allocation(db, rp, DISK_GB, 1000)
    await add_allocation(db, rp, VCPU, 6)
    await add_allocation(db, rp, VCPU, 1)

    usages = await client.get(f"/resource_providers/{rp}/usages")
    assert usages.status_code == 200
    assert usages.json() == {
        "resource_provider_generation": 1,
        "usages": {"VCPU": 7, "MEMORY_MB": 0, "DISK_GB": 1000},
    }

    put = await client.put(url, json={"resource_provider_generation": 1, "inventories": {}})
    assert put.status_code == 409
    assert code(put) == "placement.inventory.inuse"
    assert f"update conflict: Inventory for 'VCPU, DISK_GB' on resource provider '{rp}' in use." \
        in detail(put)

    delete_all = await client.delete(url)
    assert delete_all.status_code == 409
    assert code(delete_all) == "placement.inventory.inuse"
    assert f"Inventory for 'VCPU, DISK_GB' on resource provider '{rp}' in use." in detail(
        delete_all
    )

    one = await client.delete(f"{url}/VCPU")
    assert one.status_code == 409
    assert code(one) == "placement.concurrent_update"  # reference quirk Q3
    assert f"Unable to delete inventory of class VCPU: Inventory for 'VCPU' on resource " \
        f"provider '{rp}' in use." in detail(one)

    # Unused classes can go; shrinking below usage is allowed.
    shrink = await client.put(
        url,
        json={"resource_provider_generation": 1,
              "inventories": {"DISK_GB": {"total": 10}, "VCPU": {"total": 1}}},
    )
    assert shrink.status_code == 200
    assert (await client.get(f"/resource_providers/{rp}/usages")).json()["usages"] == {
        "VCPU": 7, "DISK_GB": 1000
    }


async def test_usages(client: httpx.AsyncClient, provider: ProviderFactory) -> None:
    missing = await client.get(
        "/resource_providers/fae14fa3-4b43-498c-a33c-4a1d00edb577/usages"
    )
    assert missing.status_code == 404
    assert "No resource provider with uuid fae14fa3-4b43-498c-a33c-4a1d00edb577 found" in detail(
        missing
    )
    rp = await provider()
    empty = await client.get(
        f"/resource_providers/{rp}/usages", headers={"openstack-api-version": "placement 1.0"}
    )
    assert empty.json() == {"resource_provider_generation": 0, "usages": {}}
    assert "cache-control" not in empty.headers
    cached = await client.get(f"/resource_providers/{rp}/usages")
    assert cached.headers["cache-control"] == "no-cache"
    assert "last-modified" in cached.headers


async def test_replace_all_in_callers_transaction(
    client: httpx.AsyncClient, provider: ProviderFactory, db: AsyncEngine
) -> None:
    """The reshaper's use: several writes on one provider in one transaction."""
    rp = await provider()
    await add_allocation(db, rp, VCPU, 2)

    async def work(conn):  # type: ignore[no-untyped-def]
        row = await require_provider(conn, rp)
        repo = InventoryRepository(conn)
        await repo.replace_all(
            row, {"VCPU": InventoryRecord(total=4), "DISK_GB": InventoryRecord(total=9)},
            now=utcnow(),
        )
        # The capacity rule is the service's: the repository stores reserved > total.
        await repo.replace_all(
            row, {"VCPU": InventoryRecord(total=4, reserved=9)}, now=utcnow(),
        )
        return row.generation

    assert await Database(db).write(work) == 2

    async def remove_used(conn):  # type: ignore[no-untyped-def]
        row = await require_provider(conn, rp)
        await InventoryRepository(conn).replace_all(row, {}, now=utcnow())

    with pytest.raises(InventoryInUse):
        await Database(db).write(remove_used)

    async def unknown(conn):  # type: ignore[no-untyped-def]
        row = await require_provider(conn, rp)
        await InventoryRepository(conn).replace_all(
            row, {"VCPU": InventoryRecord(total=4), "CUSTOM_NOPE": InventoryRecord(total=1)},
            now=utcnow(),
        )

    with pytest.raises(UnknownResourceClass):
        await Database(db).write(unknown)
    listed = (await client.get(f"/resource_providers/{rp}/inventories")).json()
    assert listed["resource_provider_generation"] == 2
    assert listed["inventories"]["VCPU"]["reserved"] == 9


async def test_concurrent_writers(client: httpx.AsyncClient, provider: ProviderFactory) -> None:
    """Generation compare-and-swap: one of several same-generation writers wins."""
    rp = await provider()
    url = f"/resource_providers/{rp}/inventories"
    puts = await asyncio.gather(
        *(
            client.put(
                url,
                json={"resource_provider_generation": 0,
                      "inventories": {"VCPU": {"total": total}}},
            )
            for total in range(1, 9)
        )
    )
    statuses = sorted(response.status_code for response in puts)
    assert statuses == [200] + [409] * 7
    assert all(code(r) == "placement.concurrent_update" for r in puts if r.status_code == 409)

    classes = ["DISK_GB", "MEMORY_MB", "IPV4_ADDRESS", "SRIOV_NET_VF", "PCI_DEVICE"]
    posts = await asyncio.gather(
        *(client.post(url, json={"resource_class": rc, "total": 4}) for rc in classes)
    )
    assert [response.status_code for response in posts] == [201] * 5
    generations = sorted(response.json()["resource_provider_generation"] for response in posts)
    assert generations == [2, 3, 4, 5, 6]
    listed = (await client.get(url)).json()
    assert listed["resource_provider_generation"] == 6
    assert len(listed["inventories"]) == 6
