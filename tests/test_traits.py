"""Traits (``/traits``) and provider traits (``/resource_providers/{uuid}/traits``)."""

import asyncio
import uuid

import httpx
import pytest

from tests.api_helpers import detail, make_provider

V1_5 = {"openstack-api-version": "placement 1.5"}
V1_14 = {"openstack-api-version": "placement 1.14"}
V1_15 = {"openstack-api-version": "placement 1.15"}


async def trait_names(client: httpx.AsyncClient, query: str = "") -> list[str]:
    response = await client.get(f"/traits{query}")
    assert response.status_code == 200, response.text
    names: list[str] = response.json()["traits"]
    return names


async def test_routes_need_1_6(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    for method, path in [
        ("GET", "/traits"),
        ("GET", "/traits/CUSTOM_A"),
        ("PUT", "/traits/CUSTOM_A"),
        ("DELETE", "/traits/CUSTOM_A"),
        ("GET", f"/resource_providers/{provider}/traits"),
        ("DELETE", f"/resource_providers/{provider}/traits"),
    ]:
        response = await client.request(method, path, headers=V1_5)
        assert response.status_code == 404, (method, path)
    response = await client.put(
        f"/resource_providers/{provider}/traits",
        json={"traits": [], "resource_provider_generation": 0},
        headers=V1_5,
    )
    assert response.status_code == 404


async def test_method_not_allowed_lists_methods(client: httpx.AsyncClient) -> None:
    response = await client.post("/traits/CUSTOM_A")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT, DELETE"
    response = await client.post(f"/resource_providers/{uuid.uuid4()}/traits")
    assert response.headers["allow"] == "GET, PUT, DELETE"


async def test_custom_trait_lifecycle(client: httpx.AsyncClient) -> None:
    created = await client.put("/traits/CUSTOM_GOLD")
    assert created.status_code == 201
    assert created.headers["location"] == "http://placement.test/traits/CUSTOM_GOLD"
    assert created.content == b""
    assert "content-type" not in created.headers
    again = await client.put("/traits/CUSTOM_GOLD")
    assert again.status_code == 204
    assert again.headers["location"].endswith("/traits/CUSTOM_GOLD")

    shown = await client.get("/traits/CUSTOM_GOLD")
    assert shown.status_code == 204
    assert shown.content == b""
    assert shown.headers["cache-control"] == "no-cache"
    assert shown.headers["last-modified"].endswith(" GMT")

    assert (await client.delete("/traits/CUSTOM_GOLD")).status_code == 204
    missing = await client.get("/traits/CUSTOM_GOLD")
    assert missing.status_code == 404
    assert "No such trait(s): CUSTOM_GOLD." in detail(missing)
    assert (await client.delete("/traits/CUSTOM_GOLD")).status_code == 404


@pytest.mark.parametrize(
    "name", ["TRAIT_X", "CUSTOM_ABC:1", "CUSTOM_lower", "CUSTOM_", "CUSTOM_" + "A" * 249]
)
async def test_put_trait_rejects_non_custom_names(client: httpx.AsyncClient, name: str) -> None:
    response = await client.put(f"/traits/{name}")
    assert response.status_code == 400
    assert 'start with the prefix "CUSTOM_"' in detail(response)


async def test_longest_custom_trait_is_accepted(client: httpx.AsyncClient) -> None:
    name = "CUSTOM_" + "A" * 248
    assert len(name) == 255
    assert (await client.put(f"/traits/{name}")).status_code == 201


async def test_standard_traits_are_read_only(client: httpx.AsyncClient) -> None:
    assert (await client.get("/traits/HW_CPU_X86_SSE")).status_code == 204
    response = await client.delete("/traits/HW_CPU_X86_SSE")
    assert response.status_code == 400
    assert "Cannot delete standard trait HW_CPU_X86_SSE." in detail(response)
    response = await client.put("/traits/HW_CPU_X86_SSE")
    assert response.status_code == 400


async def test_cache_headers_from_1_15(client: httpx.AsyncClient) -> None:
    old = await client.put("/traits/CUSTOM_A", headers=V1_14)
    assert old.status_code == 201
    assert "cache-control" not in old.headers
    assert "last-modified" not in old.headers
    new = await client.put("/traits/CUSTOM_A", headers=V1_15)
    assert new.status_code == 204
    assert new.headers["cache-control"] == "no-cache"
    for path in ("/traits", "/traits/CUSTOM_A"):
        assert "last-modified" not in (await client.get(path, headers=V1_14)).headers
        assert "last-modified" in (await client.get(path, headers=V1_15)).headers
    deleted = await client.delete("/traits/CUSTOM_A")
    assert "cache-control" not in deleted.headers


async def test_list_filters(client: httpx.AsyncClient) -> None:
    for name in ("CUSTOM_TRAIT_1", "CUSTOM_TRAIT_2", "CUSTOM_TRAITX", "CUSTOM_OTHER"):
        assert (await client.put(f"/traits/{name}")).status_code == 201
    everything = await trait_names(client)
    assert {"CUSTOM_TRAIT_1", "MISC_SHARES_VIA_AGGREGATE", "HW_CPU_X86_SHA"} <= set(everything)
    assert len(everything) == len(set(everything)) > 300

    names = await trait_names(client, "?name=in:CUSTOM_TRAIT_1,CUSTOM_TRAIT_2,NOT_A_TRAIT")
    assert sorted(names) == ["CUSTOM_TRAIT_1", "CUSTOM_TRAIT_2"]
    # startswith is a LIKE prefix: '_' matches any one character.
    names = await trait_names(client, "?name=startswith:CUSTOM_TRAIT_")
    assert sorted(names) == ["CUSTOM_TRAITX", "CUSTOM_TRAIT_1", "CUSTOM_TRAIT_2"]
    assert await trait_names(client, "?name=startswith:CUSTOM_OTH") == ["CUSTOM_OTHER"]
    # An unknown operator filters nothing.
    assert sorted(await trait_names(client, "?name=foo:bar")) == sorted(everything)
    # A repeated key: the last value counts.
    assert await trait_names(
        client, "?name=in:CUSTOM_TRAIT_1&name=in:CUSTOM_OTHER"
    ) == ["CUSTOM_OTHER"]
    assert await trait_names(client, "?name=in:") == []


async def test_list_query_errors(client: httpx.AsyncClient) -> None:
    response = await client.get("/traits?name=in_abc")
    assert response.status_code == 400
    assert (
        "Badly formatted name parameter. Expected name query string parameter in form: "
        '?name=[in|startswith]:[name1,name2|prefix]. Got: "in_abc"'
    ) in detail(response)
    response = await client.get("/traits?invalid=abc")
    assert response.status_code == 400
    assert (
        "Invalid query string parameters: Additional properties are not allowed "
        "('invalid' was unexpected)"
    ) in detail(response)
    response = await client.get("/traits?associated=yes")
    assert response.status_code == 400
    assert 'The query parameter "associated" only accepts "true" or "false"' in detail(response)


async def test_list_associated(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    for name in ("CUSTOM_USED", "CUSTOM_UNUSED"):
        await client.put(f"/traits/{name}")
    response = await client.put(
        f"/resource_providers/{provider}/traits",
        json={"traits": ["CUSTOM_USED", "HW_CPU_X86_AVX"], "resource_provider_generation": 0},
    )
    assert response.status_code == 200
    assert sorted(await trait_names(client, "?associated=TRUE")) == [
        "CUSTOM_USED", "HW_CPU_X86_AVX"
    ]
    assert await trait_names(client, "?associated=true&name=startswith:CUSTOM_") == [
        "CUSTOM_USED"
    ]
    unassociated = await trait_names(client, "?associated=false")
    assert "CUSTOM_UNUSED" in unassociated
    assert "CUSTOM_USED" not in unassociated
    assert "HW_CPU_X86_AVX" not in unassociated


async def test_delete_in_use_trait_conflicts(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    await client.put("/traits/CUSTOM_BUSY")
    await client.put(
        f"/resource_providers/{provider}/traits",
        json={"traits": ["CUSTOM_BUSY"], "resource_provider_generation": 0},
    )
    response = await client.delete("/traits/CUSTOM_BUSY")
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert "The trait CUSTOM_BUSY is in use by a resource provider." in error["detail"]
    assert error["code"] == "placement.undefined_code"
    assert (await client.delete(f"/resource_providers/{provider}/traits")).status_code == 204
    assert (await client.delete("/traits/CUSTOM_BUSY")).status_code == 204


async def test_provider_traits_generations(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/traits"
    await client.put("/traits/CUSTOM_A")

    empty = await client.get(path)
    assert empty.status_code == 200
    assert empty.json() == {"traits": [], "resource_provider_generation": 0}

    response = await client.put(
        path, json={"traits": ["CUSTOM_A", "HW_CPU_X86_SSE", "CUSTOM_A"],
                    "resource_provider_generation": 0}
    )
    assert response.status_code == 200
    body = response.json()
    assert sorted(body["traits"]) == ["CUSTOM_A", "HW_CPU_X86_SSE"]
    assert body["resource_provider_generation"] == 1
    assert response.headers["cache-control"] == "no-cache"

    # The same set again: the generation does not move.
    same = await client.put(
        path, json={"traits": ["HW_CPU_X86_SSE", "CUSTOM_A"], "resource_provider_generation": 1}
    )
    assert same.json()["resource_provider_generation"] == 1

    listed = (await client.get(path)).json()
    assert sorted(listed["traits"]) == ["CUSTOM_A", "HW_CPU_X86_SSE"]
    assert listed["resource_provider_generation"] == 1

    stale = await client.put(
        path, json={"traits": [], "resource_provider_generation": 0}
    )
    assert stale.status_code == 409
    error = stale.json()["errors"][0]
    assert error["code"] == "placement.concurrent_update"
    assert "Resource provider's generation already changed." in error["detail"]

    removed = await client.delete(path)
    assert removed.status_code == 204
    assert removed.content == b""
    assert (await client.get(path)).json() == {"traits": [], "resource_provider_generation": 2}
    # Nothing to remove: the generation stays.
    assert (await client.delete(path)).status_code == 204
    assert (await client.get(path)).json()["resource_provider_generation"] == 2


async def test_provider_traits_unknown_names(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/traits"
    response = await client.put(
        path,
        json={"traits": ["NOPE_1", "HW_CPU_X86_SSE", "NOPE_2"], "resource_provider_generation": 0},
    )
    assert response.status_code == 400
    assert "No such trait NOPE_1, NOPE_2" in detail(response)
    # Generation mismatch is judged before the names.
    response = await client.put(
        path, json={"traits": ["NOPE_1"], "resource_provider_generation": 7}
    )
    assert response.status_code == 409
    assert (await client.get(path)).json()["resource_provider_generation"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"traits": ["CUSTOM_A"]}, "'resource_provider_generation' is a required property"),
        ({"traits": ["A"], "resource_provider_generation": "x"}, "'x' is not of type 'integer'"),
        ({"traits": ["A"], "resource_provider_generation": True},
         "True is not of type 'integer'"),
        ({"traits": "x", "resource_provider_generation": 0}, "'x' is not of type 'array'"),
        ({"traits": [], "resource_provider_generation": 0, "extra": 1},
         "Additional properties are not allowed"),
        ({"traits": [""], "resource_provider_generation": 0}, "'' should be non-empty"),
        ({"traits": ["A" * 256], "resource_provider_generation": 0}, "is too long"),
    ],
)
async def test_provider_traits_body_is_checked_before_provider(
    client: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    response = await client.put(f"/resource_providers/{uuid.uuid4()}/traits", json=body)
    assert response.status_code == 400
    assert "JSON does not validate" in detail(response)
    assert message in detail(response)


async def test_provider_traits_missing_provider(client: httpx.AsyncClient) -> None:
    path = "/resource_providers/non_existed/traits"
    for response in (
        await client.get(path),
        await client.delete(path),
        await client.put(path, json={"traits": [], "resource_provider_generation": 0}),
    ):
        assert response.status_code == 404
        assert "No resource provider with uuid non_existed found" in detail(response)


async def test_provider_traits_content_negotiation(client: httpx.AsyncClient) -> None:
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/traits"
    wrong_type = await client.put(
        path, content=b"{}", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    not_json = await client.get(path, headers={"accept": "text/plain"})
    assert not_json.status_code == 406


async def test_concurrent_trait_creation(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(client.put("/traits/CUSTOM_RACE") for _ in range(8)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [204] * 7


async def test_concurrent_provider_trait_writes(client: httpx.AsyncClient) -> None:
    """Writers that saw the same generation: exactly one wins, the rest get 409."""
    provider = await make_provider(client)
    path = f"/resource_providers/{provider}/traits"
    names = ["HW_CPU_X86_SSE", "HW_CPU_X86_SSE2", "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2"]
    responses = await asyncio.gather(
        *(client.put(path, json={"traits": [name], "resource_provider_generation": 0})
          for name in names)
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 409, 409, 409]
    final = (await client.get(path)).json()
    assert final["resource_provider_generation"] == 1
    assert len(final["traits"]) == 1


async def test_nul_bytes_are_refused(client: httpx.AsyncClient) -> None:
    """A NUL (PostgreSQL cannot store or compare one) anywhere in the URL or a
    body is a 400 before any lookup (issue 12), the same on every database."""
    assert (await client.get("/traits/CUSTOM_%00")).status_code == 400
    assert (await client.get("/traits?name=in:CUSTOM_A%00")).status_code == 400
    assert (await client.get("/traits?name=startswith:HW%00")).status_code == 400
    assert (await client.get("/resource_providers/a%00b/traits")).status_code == 400
    provider = await make_provider(client)
    response = await client.put(
        f"/resource_providers/{provider}/traits",
        json={"traits": ["HW_CPU_X86_SSE\u0000"], "resource_provider_generation": 0},
    )
    assert response.status_code == 400
    assert "cannot be stored (NUL)" in detail(response)
