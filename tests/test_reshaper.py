"""``POST /reshaper`` (spec §13): inventory and allocations moved in one transaction."""

from typing import Any

import httpx

from tests.allocation_helpers import body
from tests.api_helpers import error, generation, make_provider, new_uuid, usages

SERVICE = {"x-roles": "service"}
V1_29 = {"openstack-api-version": "placement 1.29", **SERVICE}
V1_37 = {"openstack-api-version": "placement 1.37", **SERVICE}


async def _setup(client: httpx.AsyncClient) -> tuple[str, str, str, str]:
    root = await make_provider(client, {"VCPU": {"total": 8}, "DISK_GB": {"total": 100}})
    child = await make_provider(client, parent=root)
    vm1, vm2 = new_uuid(), new_uuid()
    for vm, res in ((vm1, {"VCPU": 2, "DISK_GB": 10}), (vm2, {"VCPU": 1})):
        response = await client.put(f"/allocations/{vm}", json=body({root: res}, None))
        assert response.status_code == 204
    return root, child, vm1, vm2


def _move(root: str, child: str, vm1: str, vm2: str, root_gen: int, child_gen: int,
          vm1_gen: int | None = 1, vm2_gen: int | None = 1) -> dict[str, Any]:
    return {
        "inventories": {
            root: {"resource_provider_generation": root_gen,
                   "inventories": {"DISK_GB": {"total": 100}}},
            child: {"resource_provider_generation": child_gen,
                    "inventories": {"VCPU": {"total": 8}}},
        },
        "allocations": {
            vm1: body({root: {"DISK_GB": 10}, child: {"VCPU": 2}}, vm1_gen),
            vm2: body({child: {"VCPU": 1}}, vm2_gen),
        },
    }


async def test_move_vcpu_to_child(client: httpx.AsyncClient) -> None:
    root, child, vm1, vm2 = await _setup(client)
    assert (await generation(client, root), await generation(client, child)) == (3, 0)
    response = await client.post("/reshaper", headers=SERVICE,
                                 json=_move(root, child, vm1, vm2, 3, 0))
    assert response.status_code == 204, response.text
    assert await usages(client, root) == {"DISK_GB": 10}
    assert await usages(client, child) == {"VCPU": 3}
    # non-empty inventory: +2 (interim, final); allocations +1
    assert (await generation(client, root), await generation(client, child)) == (6, 3)
    view = (await client.get(f"/allocations/{vm1}")).json()
    assert view["consumer_generation"] == 2
    assert view["allocations"][child]["resources"] == {"VCPU": 2}

    # move back; clear vm2 through {}; the child's inventory goes away (+1 only)
    back = {
        "inventories": {
            root: {"resource_provider_generation": 6,
                   "inventories": {"DISK_GB": {"total": 100}, "VCPU": {"total": 8}}},
            child: {"resource_provider_generation": 3, "inventories": {}},
        },
        "allocations": {
            vm1: body({root: {"DISK_GB": 10, "VCPU": 2}}, 2),
            vm2: body({}, 2),
        },
    }
    response = await client.post("/reshaper", headers=SERVICE, json=back)
    assert response.status_code == 204, response.text
    assert await usages(client, root) == {"DISK_GB": 10, "VCPU": 2}
    assert await usages(client, child) == {}
    assert (await generation(client, root), await generation(client, child)) == (9, 5)
    assert (await client.get(f"/allocations/{vm2}")).json() == {"allocations": {}}


async def test_failures_roll_everything_back(client: httpx.AsyncClient) -> None:
    root, child, vm1, vm2 = await _setup(client)
    attempts: list[tuple[dict[str, Any], int, str | None, str]] = []
    stale = _move(root, child, vm1, vm2, 2, 0)
    attempts.append((stale, 409, "placement.concurrent_update",
                     "resource provider generation conflict for provider"))
    missing = _move(root, child, vm1, vm2, 3, 0)
    missing["inventories"][new_uuid()] = missing["inventories"].pop(child)
    attempts.append((missing, 400, "placement.resource_provider.not_found", "not found"))
    unknown_class = _move(root, child, vm1, vm2, 3, 0)
    unknown_class["inventories"][child]["inventories"]["CUSTOM_NOPE"] = {"total": 1}
    attempts.append((unknown_class, 400, None,
                     "malformed reshaper data: No such resource class CUSTOM_NOPE."))
    in_use = _move(root, child, vm1, vm2, 3, 0)
    del in_use["allocations"][vm2]  # vm2 keeps VCPU on the root, whose VCPU goes away
    attempts.append((in_use, 409, "placement.inventory.inuse", "update conflict: Inventory"))
    too_big = _move(root, child, vm1, vm2, 3, 0)
    too_big["inventories"][child]["inventories"]["VCPU"]["total"] = 2
    attempts.append((too_big, 409, None, "Unable to allocate inventory"))
    consumer_gen = _move(root, child, vm1, vm2, 3, 0, vm2_gen=7)
    attempts.append((consumer_gen, 409, "placement.concurrent_update",
                     "consumer generation conflict"))
    for data, status, code, text in attempts:
        response = await client.post("/reshaper", headers=SERVICE, json=data)
        assert response.status_code == status, response.text
        if code:
            assert error(response)["code"] == code
        assert text in error(response)["detail"]
    assert (await generation(client, root), await generation(client, child)) == (3, 0)
    assert await usages(client, root) == {"DISK_GB": 10, "VCPU": 3}
    assert await usages(client, child) == {}
    assert (await client.get(f"/allocations/{vm1}")).json()["consumer_generation"] == 1


async def test_schema_policy_and_versions(client: httpx.AsyncClient) -> None:
    root, child, vm1, vm2 = await _setup(client)
    data = _move(root, child, vm1, vm2, 3, 0)
    assert (await client.post("/reshaper", json=data)).status_code == 403  # admin, no service
    assert (await client.post("/reshaper", headers=V1_29, json=data)).status_code == 404
    assert (await client.get("/reshaper")).headers["allow"] == "POST"
    untyped = _move(root, child, vm1, vm2, 3, 0)
    for entry in untyped["allocations"].values():
        del entry["consumer_type"]
    response = await client.post("/reshaper", headers=SERVICE, json=untyped)
    assert "'consumer_type' is a required property" in error(response)["detail"]
    response = await client.post("/reshaper", headers=V1_37, json=data)
    assert "'consumer_type' was unexpected" in error(response)["detail"]
    bad_bodies: list[dict[str, Any]] = [
        {"inventories": {}, "allocations": {}}, {"inventories": data["inventories"]},
        {**data, "cows": 1},
    ]
    for bad in bad_bodies:
        response = await client.post("/reshaper", headers=SERVICE, json=bad)
        assert response.status_code == 400
        assert "JSON does not validate" in error(response)["detail"]
    response = await client.post("/reshaper", headers=V1_37, json=untyped)
    assert response.status_code == 204, response.text
