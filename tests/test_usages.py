"""``GET /usages`` (spec §11.2): totals by project/user, consumer types at 1.38."""

import httpx

from tests.allocation_helpers import body
from tests.api_helpers import error, make_provider, new_uuid

V1_8 = {"openstack-api-version": "placement 1.8"}
V1_9 = {"openstack-api-version": "placement 1.9"}
V1_37 = {"openstack-api-version": "placement 1.37"}
INVENTORY = {"VCPU": {"total": 64}, "MEMORY_MB": {"total": 65536}}


async def _seed(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, INVENTORY)
    writes = [
        (body({rp: {"VCPU": 3}}, consumer_type="INSTANCE"), {}),
        (body({rp: {"VCPU": 4, "MEMORY_MB": 200}}, consumer_type="MIGRATION"), {}),
        (body({rp: {"VCPU": 2, "MEMORY_MB": 100}}, consumer_type=None), V1_37),
        (body({rp: {"VCPU": 1}}, user="u2", consumer_type="INSTANCE"), {}),
        (body({rp: {"VCPU": 8}}, project="other", consumer_type="INSTANCE"), {}),
    ]
    for data, headers in writes:
        response = await client.put(f"/allocations/{new_uuid()}", json=data, headers=headers)
        assert response.status_code == 204, response.text


async def test_usages_by_project_and_user(client: httpx.AsyncClient) -> None:
    await _seed(client)
    response = await client.get("/usages?project_id=p1", headers=V1_9)
    assert response.json() == {"usages": {"VCPU": 10, "MEMORY_MB": 300}}
    assert "last-modified" not in response.headers
    by_user = await client.get("/usages?project_id=p1&user_id=u2", headers=V1_37)
    assert by_user.json() == {"usages": {"VCPU": 1}}
    assert "last-modified" in by_user.headers
    assert (await client.get("/usages?project_id=nobody", headers=V1_9)).json() == {
        "usages": {}}
    assert (await client.get("/usages?project_id=p1", headers=V1_8)).status_code == 404


async def test_usages_by_consumer_type(client: httpx.AsyncClient) -> None:
    await _seed(client)
    grouped = (await client.get("/usages?project_id=p1")).json()["usages"]
    assert grouped == {
        "INSTANCE": {"VCPU": 4, "consumer_count": 2},
        "MIGRATION": {"VCPU": 4, "MEMORY_MB": 200, "consumer_count": 1},
        "unknown": {"VCPU": 2, "MEMORY_MB": 100, "consumer_count": 1},
    }
    everything = (await client.get("/usages?project_id=p1&consumer_type=all")).json()
    assert everything == {"usages": {"all": {"VCPU": 10, "MEMORY_MB": 300,
                                             "consumer_count": 4}}}
    unknown = (await client.get("/usages?project_id=p1&consumer_type=unknown")).json()
    assert unknown == {"usages": {"unknown": {"VCPU": 2, "MEMORY_MB": 100,
                                              "consumer_count": 1}}}
    one = (await client.get("/usages?project_id=p1&user_id=u1&consumer_type=INSTANCE")).json()
    assert one == {"usages": {"INSTANCE": {"VCPU": 3, "consumer_count": 1}}}
    for other in ("ALL", "UNKNOWN", "COW", "allfoo"):
        response = await client.get(f"/usages?project_id=p1&consumer_type={other}")
        assert response.status_code == 200
        assert response.json() == {"usages": {}}


async def test_usages_query_validation(client: httpx.AsyncClient) -> None:
    for query, text in (
        ("", "'project_id' is a required property"),
        ("?project_id=", "Failed validating 'minLength'"),
        ("?project_id=p&user_id=", "Failed validating 'minLength'"),
        (f"?project_id={'x' * 256}", "Failed validating 'maxLength'"),
        ("?project_id=p&dummy=1", "Additional properties are not allowed"),
        ("?project_id=p&consumer_type=instance", "does not match"),
    ):
        response = await client.get(f"/usages{query}")
        assert response.status_code == 400, query
        assert "Invalid query string parameters" in error(response)["detail"]
        assert text in error(response)["detail"]
    # consumer_type is not a parameter before 1.38
    old = await client.get("/usages?project_id=p&consumer_type=all", headers=V1_37)
    assert old.status_code == 400


async def test_usages_policy_before_validation(client: httpx.AsyncClient) -> None:
    reader = {"x-auth-token": "bob:p1", "x-roles": "reader"}
    assert (await client.get("/usages", headers=reader)).status_code == 403
    assert (await client.get("/usages?project_id=p2", headers=reader)).status_code == 403
    assert (await client.get("/usages?project_id=p1", headers=reader)).status_code == 200
    member = {"x-auth-token": "bob:p1", "x-roles": "member"}
    assert (await client.get("/usages?project_id=p1", headers=member)).status_code == 403
    assert (await client.get("/usages")).status_code == 400  # admin
