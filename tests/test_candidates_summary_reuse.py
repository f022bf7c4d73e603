"""Provider summaries reused between answers from the snapshot: a provider's
summary is built again as soon as its usage, inventory or traits change, and
each microversion gets its own summary shape."""

import importlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, app_client, make_provider, microversion

QUERY = {"resources": "VCPU:1"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, auth_strategy="noauth2",
                        candidates_snapshot_max_age=0)
    async with app_client(settings, ADMIN_LATEST) as client:
        yield client


async def _summaries(client: httpx.AsyncClient, version: str = "latest") -> dict[str, Any]:
    response = await client.get("/allocation_candidates", params=QUERY,
                                headers=microversion(version))
    assert response.status_code == 200, response.text
    summaries: dict[str, Any] = response.json()["provider_summaries"]
    return summaries


async def test_changed_providers_get_new_summaries(client: httpx.AsyncClient) -> None:
    busy = await make_provider(client, {"VCPU": {"total": 8}}, name="busy")
    idle = await make_provider(client, {"VCPU": {"total": 4}}, name="idle")
    before = await _summaries(client)
    assert before[busy]["resources"]["VCPU"] == {"capacity": 8, "used": 0}
    assert before[idle]["traits"] == []

    consumer = str(uuid.uuid4())
    response = await client.put(f"/allocations/{consumer}", json={
        "allocations": {busy: {"resources": {"VCPU": 3}}},
        "project_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()),
        "consumer_generation": None, "consumer_type": "INSTANCE",
    })
    assert response.status_code == 204, response.text
    after = await _summaries(client)
    assert after[busy]["resources"]["VCPU"] == {"capacity": 8, "used": 3}
    assert after[idle] == before[idle]

    response = await client.put(f"/resource_providers/{idle}/traits", json={
        "resource_provider_generation": 1, "traits": ["HW_CPU_X86_AVX2"],
    })
    assert response.status_code == 200, response.text
    response = await client.put(f"/resource_providers/{idle}/inventories", json={
        "resource_provider_generation": 2, "inventories": {"VCPU": {"total": 6}},
    })
    assert response.status_code == 200, response.text
    latest = await _summaries(client)
    assert latest[idle] == {
        "resources": {"VCPU": {"capacity": 6, "used": 0}},
        "traits": ["HW_CPU_X86_AVX2"],
        "parent_provider_uuid": None,
        "root_provider_uuid": idle,
    }
    assert latest[busy] == after[busy]

    # Older microversions: the same providers, the shape of their version.
    assert await _summaries(client, "1.28") == {
        busy: {"resources": {"VCPU": {"capacity": 8, "used": 3}}, "traits": []},
        idle: {"resources": {"VCPU": {"capacity": 6, "used": 0}},
               "traits": ["HW_CPU_X86_AVX2"]},
    }
    assert await _summaries(client, "1.12") == {
        busy: {"resources": {"VCPU": {"capacity": 8, "used": 3}}},
        idle: {"resources": {"VCPU": {"capacity": 6, "used": 0}}},
    }
    assert (await _summaries(client))[idle] == latest[idle]

    # Deleting allocations bumps no generation: the usage alone tells.
    response = await client.delete(f"/allocations/{consumer}")
    assert response.status_code == 204, response.text
    assert (await _summaries(client))[busy]["resources"]["VCPU"] == {"capacity": 8, "used": 0}


async def test_equal_providers_then_one_changes(client: httpx.AsyncClient) -> None:
    """Summaries of equal providers may share their resources objects (render.py
    interns them): a claim on one changes that provider's summary only, in this
    answer and the next, with a tree of several providers in between."""
    twins = [await make_provider(client, {"VCPU": {"total": 4}}, name=f"twin-{i}")
             for i in range(3)]
    root = await make_provider(client, {"VCPU": {"total": 4}}, name="root")
    child = await make_provider(client, {"VCPU": {"total": 4}}, name="child", parent=root)
    before = await _summaries(client)
    for provider in (*twins, root, child):
        assert before[provider]["resources"] == {"VCPU": {"capacity": 4, "used": 0}}
    response = await client.put(f"/allocations/{uuid.uuid4()}", json={
        "allocations": {twins[1]: {"resources": {"VCPU": 2}}},
        "project_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()),
        "consumer_generation": None, "consumer_type": "INSTANCE",
    })
    assert response.status_code == 204, response.text
    for _ in range(2):
        after = await _summaries(client)
        assert list(after) == list(before)
        assert after[twins[1]]["resources"] == {"VCPU": {"capacity": 4, "used": 2}}
        for provider in (twins[0], twins[2], root, child):
            assert after[provider] == before[provider]


async def test_deleted_providers_leave_the_kept_summaries(client: httpx.AsyncClient) -> None:
    """What a worker keeps per provider id beside its snapshot (summary rows and
    rendered summaries) is dropped when a refresh finds the provider deleted: a
    cloud's churn does not pile up in the worker."""
    from app.db.repositories.candidates import memory_summaries

    # the package's ``render`` is its function: the module by its name
    render = importlib.import_module("app.services.candidates.render")

    kept = await make_provider(client, {"VCPU": {"total": 8}}, name="kept")
    doomed = await make_provider(client, {"VCPU": {"total": 8}}, name="doomed")
    assert set(await _summaries(client)) == {kept, doomed}
    ids = {info[0]: id_ for id_, (info, *_) in memory_summaries._ROWS.items()}
    assert {kept, doomed} <= ids.keys()
    assert ids[doomed] in render._SUMMARIES

    response = await client.delete(f"/resource_providers/{doomed}")
    assert response.status_code == 204, response.text
    assert set(await _summaries(client)) == {kept}
    assert ids[doomed] not in memory_summaries._ROWS
    assert ids[doomed] not in render._SUMMARIES
    assert ids[kept] in memory_summaries._ROWS
    assert ids[kept] in render._SUMMARIES
