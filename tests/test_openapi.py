import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.api.openapi import build_document
from app.api.routing import RouteTable
from app.microversion import VERSIONS, parse_version
from tests.api_helpers import ADMIN_LATEST, microversion, new_uuid
from tests.openapi_contract import Contract, ContractViolation

OPERATIONS = ("get", "put", "post", "delete", "patch")


async def document(client: httpx.AsyncClient, label: str) -> dict[str, Any]:
    response = await client.get(f"/openapi/{label}.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in OPERATIONS
    }


def served(app: FastAPI, label: str) -> set[tuple[str, str]]:
    """What the route table serves at a version: method and path of each route."""
    table: RouteTable = app.state.route_table
    version = parse_version(label)
    return {(spec.method, spec.path) for spec in table.endpoints if spec.covers(version)}


async def test_every_document_lists_exactly_the_routes_served(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    counts = []
    for label in VERSIONS:
        listed = operations(await document(client, label))
        assert listed == served(app, label), label
        counts.append(len(listed))
    assert counts[0] < counts[-1]
    # The routing agrees: at 1.0 /aggregates is a 404, at 1.1 it is served.
    rp = new_uuid()
    path = f"/resource_providers/{rp}/aggregates"
    assert (await client.get(path, headers=microversion("1.0"))).status_code == 404
    assert ("GET", "/resource_providers/{uuid}/aggregates") not in operations(
        await document(client, "1.0")
    )
    assert ("GET", "/resource_providers/{uuid}/aggregates") in operations(
        await document(client, "1.1")
    )


async def test_latest_document_is_the_last_microversion(client: httpx.AsyncClient) -> None:
    latest = (await client.get("/openapi.json")).json()
    assert latest["info"]["version"] == VERSIONS[-1]
    assert latest == await document(client, VERSIONS[-1])
    assert (await client.get("/openapi/1.99.json")).status_code == 404


async def test_operation_ids_are_the_handlers_names_and_unique(client: httpx.AsyncClient) -> None:
    for label in ("1.0", "1.6", "1.7", VERSIONS[-1]):
        doc = await document(client, label)
        ids = [
            item[method]["operationId"]
            for item in doc["paths"].values()
            for method in item
        ]
        assert len(ids) == len(set(ids))
        assert all(re.fullmatch(r"[a-z_]+", each) for each in ids)
    latest = await document(client, VERSIONS[-1])
    assert latest["paths"]["/resource_providers"]["get"]["operationId"] == (
        "list_resource_providers"
    )
    assert "rename_resource_class" in str(await document(client, "1.6"))
    assert "ensure_resource_class" in str(await document(client, "1.7"))


async def test_success_status_and_body_follow_the_version(client: httpx.AsyncClient) -> None:
    old = (await document(client, "1.19"))["paths"]["/resource_providers"]["post"]
    assert next(iter(old["responses"])) == "201"
    assert "content" not in old["responses"]["201"]
    assert "200" not in old["responses"]
    new = (await document(client, "1.20"))["paths"]["/resource_providers"]["post"]
    assert next(iter(new["responses"])) == "200"
    assert new["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProviderOut"
    }
    put_trait = (await document(client, "1.6"))["paths"]["/traits/{name}"]["put"]
    assert {"201", "204"} <= set(put_trait["responses"])


async def test_fields_follow_the_version_and_are_marked(client: httpx.AsyncClient) -> None:
    old = (await document(client, "1.0"))["components"]["schemas"]["ProviderOut"]
    assert "parent_provider_uuid" not in old["properties"]
    assert "parent_provider_uuid" not in old["required"]
    new = (await document(client, "1.14"))["components"]["schemas"]["ProviderOut"]
    assert new["properties"]["parent_provider_uuid"]["x-placement-since"] == "1.14"
    assert "root_provider_uuid" in new["required"]
    # A request model of a later version marks what it adds (lineage).
    body = (await document(client, "1.38"))["components"]["schemas"]["AllocationsV1_38"]
    assert body["properties"]["consumer_type"]["x-placement-since"] == "1.38"
    assert body["properties"]["consumer_generation"]["x-placement-since"] == "1.28"
    summary = (await document(client, "1.10"))["components"]["schemas"]["ProviderSummary"]
    assert set(summary["properties"]) == {"resources"}


async def test_query_parameters_follow_the_version(client: httpx.AsyncClient) -> None:
    def names(doc: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
        params = doc["paths"][path]["get"].get("parameters", [])
        return {param["name"]: param for param in params if param["in"] == "query"}

    first = names(await document(client, "1.0"), "/resource_providers")
    assert set(first) == {"name", "uuid"}
    latest = await document(client, VERSIONS[-1])
    providers = names(latest, "/resource_providers")
    assert set(providers) == {"name", "uuid", "member_of", "resources", "in_tree", "required"}
    assert providers["required"]["schema"]["type"] == "array"
    assert "in:" in providers["required"]["description"]
    assert "!" in providers["member_of"]["description"]
    candidates = names(latest, "/allocation_candidates")
    assert {"resources", "limit", "group_policy", "same_subtree", "root_required"} <= set(
        candidates
    )
    assert "resources1" in candidates["resources"]["description"]
    assert names(await document(client, "1.16"), "/allocation_candidates").keys() == {
        "resources", "limit"
    }
    usages = names(latest, "/usages")
    assert usages["project_id"]["required"] is True
    assert "consumer_type" in usages
    assert "consumer_type" not in names(await document(client, "1.37"), "/usages")


async def test_errors_are_placement_errors_and_never_422(client: httpx.AsyncClient) -> None:
    for label in ("1.0", "1.22", "1.23", VERSIONS[-1]):
        doc = await document(client, label)
        assert '"422"' not in str(doc).replace("'", '"')
        for item in doc["paths"].values():
            for operation in item.values():
                statuses = set(operation["responses"])
                assert {"400", "406"} <= statuses
        error = doc["components"]["schemas"]["PlacementError"]["properties"]["errors"]
        has_code = "code" in error["items"]["required"]
        assert has_code == (parse_version(label) >= parse_version("1.23"))
    latest = await document(client, VERSIONS[-1])
    put = latest["paths"]["/resource_providers/{uuid}/inventories"]["put"]
    assert {"404", "409", "415"} <= set(put["responses"])
    assert latest["components"]["securitySchemes"]["x-auth-token"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-auth-token",
        "description": latest["components"]["securitySchemes"]["x-auth-token"]["description"],
    }
    assert latest["security"] == [{"x-auth-token": []}]
    assert latest["paths"]["/"]["get"]["security"] == []


async def test_swagger_ui_is_offline_with_a_picker_over_every_version(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/docs")).text
    assert "StandaloneLayout" not in page  # set up by the shipped script
    assert not re.search(r"(src|href)=\"https?://", page)
    for label in VERSIONS[:-1]:
        assert f"/openapi/{label}.json" in page
    assert '"/openapi.json"' in page
    for asset in re.findall(r"(?:src|href)=\"([^\"]+)\"", page):
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 500
    script = (await client.get("/openapi/static/placement-docs.js")).text
    assert "StandaloneLayout" in script
    assert "OpenStack-API-Version" in script
    assert (await client.get("/openapi/static/nothing.js")).status_code == 404
    assert (await client.get("/openapi/static/..%2Fdocument.py")).status_code == 404


async def test_redoc_is_offline_with_a_version_picker(client: httpx.AsyncClient) -> None:
    for path in ("/openapi/redoc", "/redoc"):
        response = await client.get(f"{path}?version=1.10", headers=ADMIN_LATEST)
        assert response.status_code == 200
        page = response.text
        assert not re.search(r"(src|href)=\"https?://", page)
        assert '"url": "/openapi/1.10.json"' in page
        assert '<option value="1.10" selected>' in page
    assert (await client.get("/openapi/static/redoc.standalone.js")).status_code == 200


async def test_the_contract_check_catches_a_wrong_body(app: FastAPI) -> None:
    contract = Contract(app)
    request = httpx.Request("GET", "http://placement.test/resource_providers")
    good = httpx.Response(
        200, json={"resource_providers": []}, request=request,
        headers={"openstack-api-version": "placement 1.0"},
    )
    contract.check(good, "/resource_providers")
    bad = httpx.Response(
        200, json={"resource_providers": [{"uuid": "x"}]}, request=request,
        headers={"openstack-api-version": "placement 1.0"},
    )
    with pytest.raises(ContractViolation, match="does not match"):
        contract.check(bad, "/resource_providers")
    undocumented = httpx.Response(
        422, json={}, request=request, headers={"openstack-api-version": "placement 1.0"}
    )
    with pytest.raises(ContractViolation, match="not documented"):
        contract.check(undocumented, "/resource_providers")


def test_documents_build_for_every_version(app: FastAPI) -> None:
    table: RouteTable = app.state.route_table
    for label in VERSIONS:
        doc = build_document(app.title, app.description, table, parse_version(label))
        assert doc["info"]["version"] == label


def test_viewer_assets_are_package_data() -> None:
    """``pip install .`` ships the assets: pyproject's package data covers them."""
    import tomllib
    from pathlib import Path

    import app.api.openapi.viewers as viewers

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app.api.openapi"]
    shipped = {
        path.name for pattern in patterns for path in viewers.STATIC.parent.glob(pattern)
    }
    assert {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css",
            "redoc.standalone.js", "placement-docs.js", "placement-redoc.js"} <= shipped
    assert viewers.ASSETS <= shipped


async def test_links_lead_from_creations_to_their_resources(client: httpx.AsyncClient) -> None:
    for label in ("1.19", VERSIONS[-1]):
        doc = await document(client, label)
        ids = {
            operation["operationId"]: path
            for path, item in doc["paths"].items()
            for operation in item.values()
        }
        count = 0
        for path, item in doc["paths"].items():
            for operation in item.values():
                for answer in operation["responses"].values():
                    for link in answer.get("links", {}).values():
                        target = ids[link["operationId"]]
                        assert set(link["parameters"]) == set(re.findall(r"{(\w+)}", target))
                        for expression in link["parameters"].values():
                            if expression.startswith("$request.path."):
                                assert f"{{{expression.rsplit('.', 1)[1]}}}" in path
                        count += 1
        assert count > 10
    latest = await document(client, VERSIONS[-1])
    created = latest["paths"]["/resource_providers"]["post"]["responses"]["200"]["links"]
    assert created["show_resource_provider"]["parameters"] == {"uuid": "$response.body#/uuid"}


async def test_the_viewers_need_no_token_under_noauth2(client: httpx.AsyncClient) -> None:
    # A browser opens the pages before anyone has pressed "Authorize".
    for path in ("/docs", "/redoc", "/openapi/redoc", "/openapi.json", "/openapi/1.10.json",
                 "/openapi/static/swagger-ui-bundle.js"):
        assert (await client.get(path)).status_code == 200, path
