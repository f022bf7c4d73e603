import httpx


async def test_root_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"x-auth-token": ""})
    assert response.status_code == 200
    assert response.json()["versions"][0]["max_version"] == "1.39"
    assert response.headers["openstack-api-version"] == "placement 1.39"
    assert response.headers["x-openstack-request-id"].startswith("req-")


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    request = client.build_request("GET", "/resource_classes")
    del request.headers["x-auth-token"]
    response = await client.send(request)
    assert response.status_code == 401


async def test_bad_versions(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"openstack-api-version": "placement 1.40"})
    assert response.status_code == 406
    error = response.json()["errors"][0]
    assert error["max_version"] == "1.39"
    assert error["min_version"] == "1.0"
    response = await client.get("/", headers={"openstack-api-version": "placement pony"})
    assert response.status_code == 400


async def test_custom_resource_class_lifecycle(client: httpx.AsyncClient) -> None:
    response = await client.post("/resource_classes", json={"name": "CUSTOM_GOLD"})
    assert response.status_code == 201
    assert response.headers["location"].endswith("/resource_classes/CUSTOM_GOLD")
    duplicate = await client.post("/resource_classes", json={"name": "CUSTOM_GOLD"})
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"][0]["code"] == "placement.undefined_code"
    names = [rc["name"] for rc in (await client.get("/resource_classes")).json()[
        "resource_classes"]]
    assert names[0] == "VCPU"
    assert names[-1] == "CUSTOM_GOLD"
    assert (await client.put("/resource_classes/CUSTOM_GOLD")).status_code == 204
    assert (await client.put("/resource_classes/CUSTOM_SILVER")).status_code == 201
    assert (await client.delete("/resource_classes/CUSTOM_GOLD")).status_code == 204
    assert (await client.get("/resource_classes/CUSTOM_GOLD")).status_code == 404
    standard = await client.delete("/resource_classes/VCPU")
    assert standard.status_code == 400


async def test_bad_body_is_reference_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/resource_classes", json={"name": "CUSTOM_X", "bad": 1})
    assert response.status_code == 400
    assert "Additional properties are not allowed" in response.json()["errors"][0]["detail"]
    malformed = await client.post(
        "/resource_classes", content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert "Malformed JSON" in malformed.json()["errors"][0]["detail"]
