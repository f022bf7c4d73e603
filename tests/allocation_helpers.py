"""Small API helpers shared by the allocation, usage and reshaper tests."""

import uuid as uuidlib
from typing import Any

import httpx


def new_uuid() -> str:
    return str(uuidlib.uuid4())


async def make_provider(
    client: httpx.AsyncClient,
    inventories: dict[str, dict[str, Any]] | None = None,
    *,
    parent: str | None = None,
) -> str:
    rp_uuid = new_uuid()
    body: dict[str, Any] = {"name": f"rp-{rp_uuid}", "uuid": rp_uuid}
    if parent:
        body["parent_provider_uuid"] = parent
    response = await client.post("/resource_providers", json=body)
    assert response.status_code == 200, response.text
    if inventories:
        response = await client.put(
            f"/resource_providers/{rp_uuid}/inventories",
            json={"resource_provider_generation": 0, "inventories": inventories},
        )
        assert response.status_code == 200, response.text
    return rp_uuid


async def generation(client: httpx.AsyncClient, rp_uuid: str) -> int:
    response = await client.get(f"/resource_providers/{rp_uuid}")
    assert response.status_code == 200, response.text
    return int(response.json()["generation"])


async def usages(client: httpx.AsyncClient, rp_uuid: str) -> dict[str, int]:
    response = await client.get(f"/resource_providers/{rp_uuid}/usages")
    assert response.status_code == 200, response.text
    return dict(response.json()["usages"])


def body(
    allocations: dict[str, dict[str, int]],
    generation: int | None = None,
    *,
    project: str = "p1",
    user: str = "u1",
    consumer_type: str | None = "INSTANCE",
) -> dict[str, Any]:
    """A 1.38 consumer body (drop ``consumer_type`` for 1.28-1.37)."""
    data: dict[str, Any] = {
        "allocations": {rp: {"resources": res} for rp, res in allocations.items()},
        "consumer_generation": generation,
        "project_id": project,
        "user_id": user,
    }
    if consumer_type is not None:
        data["consumer_type"] = consumer_type
    return data


def error(response: httpx.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors[0]
