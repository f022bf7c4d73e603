"""Provider aggregates (``/resource_providers/{uuid}/aggregates``, 1.1+)."""

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI

from tests.api_helpers import detail, make_provider

V1_0 = {"openstack-api-version": "placement 1.0"}
V1_14 = {"openstack-api-version": "placement 1.14"}
V1_18 = {"openstack-api-version": "placement 1.18"}

AGG_1 = "f918801a-5e54-4bee-9095-09a9d0c786b8"
AGG_2 = "a893eb5c-e2a0-4251-ab26-f71d3b0cfc0b"


async def test_routes_need_1_1(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/aggregates"
    assert (await client.get(path, headers=V1_0)).status_code == 404
    assert (await client.put(path, json=[], headers=V1_0)).status_code == 404
    response = await client.delete(path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT"


async def test_missing_provider_is_404_before_body(client: httpx.AsyncClient) -> None:
    path = f"/resource_providers/{uuid.uuid4()}/aggregates"
    assert (await client.get(path)).status_code == 404
    for content in (b"[]", b"{not json", b'{"aggregates": "x"}'):
        response = await client.put(
            path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 404
        assert "No resource provider with uuid" in detail(response)


async def test_generation_form(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/aggregates"
    empty = await client.get(path)
    assert empty.json() == {"aggregates": [], "resource_provider_generation": 0}
    assert empty.headers["cache-control"] == "no-cache"
    assert empty.headers["last-modified"].endswith(" GMT")

    response = await client.put(
        path, json={"aggregates": [AGG_1, AGG_2], "resource_provider_generation": 0}
    )
    assert response.status_code == 200
    assert response.json() == {"aggregates": [AGG_1, AGG_2], "resource_provider_generation": 1}
    assert response.headers["last-modified"].endswith(" GMT")

    listed = (await client.get(path)).json()
    assert sorted(listed["aggregates"]) == sorted([AGG_1, AGG_2])
    assert listed["resource_provider_generation"] == 1

    # The same set again still moves the generation.
    again = await client.put(
        path, json={"aggregates": [AGG_2, AGG_1], "resource_provider_generation": 1}
    )
    assert again.json() == {"aggregates": [AGG_2, AGG_1], "resource_provider_generation": 2}

    stale = await client.put(path, json={"aggregates": [], "resource_provider_generation": 1})
    assert stale.status_code == 409
    error = stale.json()["errors"][0]
    assert error["code"] == "placement.concurrent_update"
    assert "Resource provider's generation already changed." in error["detail"]

    cleared = await client.put(path, json={"aggregates": [], "resource_provider_generation": 2})
    assert cleared.json() == {"aggregates": [], "resource_provider_generation": 3}
    assert (await client.get(path)).json()["aggregates"] == []


async def test_legacy_form(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/aggregates"
    response = await client.put(path, json=[AGG_1, AGG_2], headers=V1_18)
    assert response.status_code == 200
    assert response.json() == {"aggregates": [AGG_1, AGG_2]}
    listed = await client.get(path, headers=V1_18)
    assert sorted(listed.json()["aggregates"]) == sorted([AGG_1, AGG_2])
    assert "resource_provider_generation" not in listed.json()
    # No generation change below 1.19.
    assert (await client.get(path)).json()["resource_provider_generation"] == 0

    old_headers = await client.put(path, json=[AGG_1], headers=V1_14)
    assert old_headers.status_code == 200
    assert "cache-control" not in old_headers.headers
    assert "last-modified" not in old_headers.headers
    assert "last-modified" not in (await client.get(path, headers=V1_14)).headers
    assert (await client.get(path)).json() == {
        "aggregates": [AGG_1], "resource_provider_generation": 0
    }


async def test_body_shape_follows_version(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/aggregates"
    new_shape = {"aggregates": [AGG_1], "resource_provider_generation": 0}
    response = await client.put(path, json=new_shape, headers=V1_18)
    assert response.status_code == 400
    assert "JSON does not validate" in detail(response)
    response = await client.put(path, json=[AGG_1])
    assert response.status_code == 400
    assert "JSON does not validate" in detail(response)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # The reference's validator reports the last of sibling failures.
        ({"aggregates": ["harry", "sally"], "resource_provider_generation": 0},
         "'sally' is not a 'uuid'"),
        ({"aggregates": [AGG_1, AGG_1], "resource_provider_generation": 0},
         "has non-unique elements"),
        ({"aggregates": ["x", "x"], "resource_provider_generation": 0},
         "has non-unique elements"),
        ({"aggregates": [AGG_1]}, "'resource_provider_generation' is a required property"),
        ({"resource_provider_generation": 0}, "'aggregates' is a required property"),
        ({"aggregates": [], "resource_provider_generation": 0, "x": 1},
         "Additional properties are not allowed"),
        ({"aggregates": [], "resource_provider_generation": False},
         "False is not of type 'integer'"),
        ({"aggregates": [1], "resource_provider_generation": 0}, "1 is not of type 'string'"),
    ],
)
async def test_body_errors(
    client: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    provider = await make_provider(client)
    response = await client.put(f"/resource_providers/{provider}/aggregates", json=body)
    assert response.status_code == 400
    assert "JSON does not validate" in detail(response)
    assert message in detail(response)


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    response = await client.put(
        f"/resource_providers/{provider}/aggregates",
        content=b'{"bad", "not json"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "Malformed JSON" in detail(response)


async def test_lenient_uuids_stored_as_sent(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/aggregates"
    odd = ["F918801A5E544BEE909509A9D0C786B8", "a893eb5c-e2a0-4251-ab26f71d3b0cfc0b"]
    response = await client.put(path, json={"aggregates": odd, "resource_provider_generation": 0})
    assert response.status_code == 200
    assert sorted((await client.get(path)).json()["aggregates"]) == sorted(odd)


async def test_shared_aggregates_created_concurrently(client: httpx.AsyncClient) -> None:
    """Many providers joining the same new aggregates at once all succeed."""
    providers = [await make_provider(client) for _ in range(6)]
    fresh = [str(uuid.uuid4()) for _ in range(3)]
    responses = await asyncio.gather(
        *(
            client.put(
                f"/resource_providers/{provider}/aggregates",
                json={"aggregates": fresh, "resource_provider_generation": 0},
            )
            for provider in providers
        )
    )
    assert [response.status_code for response in responses] == [200] * len(providers)
    for provider in providers:
        listed = (await client.get(f"/resource_providers/{provider}/aggregates")).json()
        assert sorted(listed["aggregates"]) == sorted(fresh)
        assert listed["resource_provider_generation"] == 1


async def test_concurrent_writers_on_one_provider(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/aggregates"
    responses = await asyncio.gather(
        *(
            client.put(path, json={"aggregates": [str(uuid.uuid4())],
                                   "resource_provider_generation": 0})
            for _ in range(4)
        )
    )
    assert sorted(response.status_code for response in responses) == [200, 409, 409, 409]
    listed = (await client.get(path)).json()
    assert listed["resource_provider_generation"] == 1
    assert len(listed["aggregates"]) == 1


async def test_writers_of_distinct_providers_never_retry(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """With the generation given, the compare-and-swap orders writers of one
    provider: writers of different providers (joining the same aggregates) run
    at READ COMMITTED and never abort each other."""
    providers = [await make_provider(client) for _ in range(8)]
    shared = [AGG_1, AGG_2, str(uuid.uuid4())]
    stats = app.state.database.stats
    before = stats.serialization_retries
    responses = await asyncio.gather(
        *(
            client.put(f"/resource_providers/{provider}/aggregates",
                       json={"aggregates": shared[: 1 + i % 3],
                             "resource_provider_generation": 0})
            for i, provider in enumerate(providers)
        )
    )
    assert [response.status_code for response in responses] == [200] * len(providers)
    assert stats.serialization_retries == before
    for i, provider in enumerate(providers):
        listed = (await client.get(f"/resource_providers/{provider}/aggregates")).json()
        assert sorted(listed["aggregates"]) == sorted(shared[: 1 + i % 3])


async def test_concurrent_writers_without_generation_leave_one_set(
    client: httpx.AsyncClient,
) -> None:
    """Before 1.19 no generation orders them: the isolation must, so the
    provider ends with exactly one writer's set, never a mix."""
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/aggregates"
    sets = [[str(uuid.uuid4()), str(uuid.uuid4())] for _ in range(4)]
    responses = await asyncio.gather(
        *(client.put(path, json=aggregates, headers=V1_18) for aggregates in sets)
    )
    assert {response.status_code for response in responses} <= {200, 409}
    listed = sorted((await client.get(path, headers=V1_18)).json()["aggregates"])
    assert listed in [sorted(aggregates) for aggregates in sets]


async def test_media_types_are_judged_before_version(client: httpx.AsyncClient) -> None:
    """As in the reference: 406/415 win over the 404 below 1.1 on these routes."""
    path = f"/resource_providers/{uuid.uuid4()}/aggregates"
    response = await client.get(path, headers={**V1_0, "accept": "text/plain"})
    assert response.status_code == 406
    response = await client.put(
        path, content=b"x", headers={**V1_0, "content-type": "text/plain"}
    )
    assert response.status_code == 415
