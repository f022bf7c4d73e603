"""Nested trees through the snapshot: the combination budget when nothing prunes,
and provider summaries kept per tree (in id order, following every change)."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, app_client, make_provider

# 4 children x 3 groups of distinct classes: 64 combinations and no stacked class,
# so nothing prunes a partial combination: 4 heads x (1 + 4 + 16) = 84 steps.
PLAIN = (
    "resources1=VCPU:1&resources2=MEMORY_MB:1&resources3=DISK_GB:1&group_policy=none"
)
CHILD = {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 8}, "DISK_GB": {"total": 8}}


async def _answer(settings: Settings, budget: int, query: str) -> tuple[int, dict[str, Any]]:
    configured = settings.model_copy(update={"candidates_max_combinations": budget})
    async with app_client(configured, ADMIN_LATEST) as client:
        root = await make_provider(client, name="root")
        for index in range(4):
            await make_provider(client, CHILD, name=f"c{index}", parent=root)
        response = await client.get("/allocation_candidates?" + query)
        return response.status_code, response.json()


@pytest.mark.parametrize(("budget", "status"), [(84, 200), (83, 400)])
async def test_budget_counts_every_step_of_a_plain_product(
    settings: Settings, budget: int, status: int
) -> None:
    answered, body = await _answer(settings, budget, PLAIN)
    assert answered == status, body
    if status == 200:
        assert len(body["allocation_requests"]) == 64


async def test_limit_stops_a_plain_product_before_the_budget(settings: Settings) -> None:
    # One head alone would take 21 steps of a budget of 20: the limit comes first.
    answered, body = await _answer(settings, 20, PLAIN + "&limit=3")
    assert answered == 200, body
    assert len(body["allocation_requests"]) == 3


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, auth_strategy="noauth2",
                        candidates_snapshot_max_age=0)
    async with app_client(settings, ADMIN_LATEST) as client:
        yield client


async def _summaries(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/allocation_candidates", params={"resources": "VCPU:1"})
    assert response.status_code == 200, response.text
    summaries: dict[str, Any] = response.json()["provider_summaries"]
    return summaries


async def test_tree_summaries_follow_changes_in_id_order(client: httpx.AsyncClient) -> None:
    vcpu = {"VCPU": {"total": 4}}
    first = await make_provider(client, name="first")
    first_a = await make_provider(client, vcpu, name="first-a", parent=first)
    second = await make_provider(client, name="second")
    second_a = await make_provider(client, vcpu, name="second-a", parent=second)
    before = await _summaries(client)
    assert list(before) == [first, first_a, second, second_a]

    response = await client.put(f"/allocations/{uuid.uuid4()}", json={
        "allocations": {second_a: {"resources": {"VCPU": 3}}},
        "project_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()),
        "consumer_generation": None, "consumer_type": "INSTANCE",
    })
    assert response.status_code == 204, response.text
    after = await _summaries(client)
    assert after[second_a]["resources"]["VCPU"] == {"capacity": 4, "used": 3}
    assert after[first_a] == before[first_a]

    response = await client.put(f"/resource_providers/{first}/traits", json={
        "resource_provider_generation": 0, "traits": ["HW_CPU_X86_AVX2"],
    })
    assert response.status_code == 200, response.text
    latest = await _summaries(client)
    assert latest[first]["traits"] == ["HW_CPU_X86_AVX2"]
    assert latest[second_a] == after[second_a]

    # A child created now interleaves the trees' ids: still in id order.
    first_b = await make_provider(client, vcpu, name="first-b", parent=first)
    interleaved = await _summaries(client)
    assert list(interleaved) == [first, first_a, second, second_a, first_b]
    assert interleaved[first_b]["root_provider_uuid"] == first
    assert interleaved[first_b]["parent_provider_uuid"] == first
