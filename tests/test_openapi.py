import httpx


async def test_latest_document_describes_versioned_bodies(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    put = document["paths"]["/allocations/{consumer_uuid}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AllocationsV1_38"
    )
    assert "/reshaper" in document["paths"]


async def test_older_document_leaves_out_newer_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi/1.5.json", headers={"x-auth-token": ""})
    assert response.status_code == 200
    document = response.json()
    assert "/traits" not in document["paths"]
    assert "/resource_classes" in document["paths"]
    put = document["paths"]["/allocations/{consumer_uuid}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AllocationsV1_0"
    )
    assert (await client.get("/openapi/1.99.json")).status_code == 404


async def test_swagger_ui_offers_every_version(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert "/openapi/1.0.json" in page
    assert "/openapi.json" in page
