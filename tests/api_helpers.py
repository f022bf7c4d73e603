"""The in-process client and the small API helpers the tests share.

Helpers that set things up through the API assert the status they expect, so
that a broken set-up fails where it happens rather than in a later assertion.
"""

import uuid as uuidlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from tests.openapi_contract import event_hook

BASE_URL = "http://placement.test"
ADMIN_LATEST = {"x-auth-token": "admin", "openstack-api-version": "placement latest"}


def microversion(version: str) -> dict[str, str]:
    """The header asking for ``version`` ("1.14", "latest")."""
    return {"openstack-api-version": f"placement {version}"}


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan run (schema synced, database open)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def asgi_client(
    app: FastAPI,
    headers: Mapping[str, str] | None = None,
    base_url: str = BASE_URL,
    root_path: str = "",
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` in process; ``headers`` go with every request.

    ``root_path``: the prefix a proxy mounted the service under, as the ASGI
    server would pass it on.
    """
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    # Every response must fit its microversion's OpenAPI document.
    hooks = {"response": [event_hook(app, root_path)]}
    async with httpx.AsyncClient(
        transport=transport, base_url=base_url, headers=headers, event_hooks=hooks
    ) as client:
        yield client


@asynccontextmanager
async def app_client(
    settings: Settings,
    headers: Mapping[str, str] | None = None,
    base_url: str = BASE_URL,
    root_path: str = "",
) -> AsyncIterator[httpx.AsyncClient]:
    """``running_app`` and ``asgi_client`` in one."""
    async with running_app(settings) as app, asgi_client(
        app, headers, base_url, root_path
    ) as client:
        yield client


def new_uuid() -> str:
    return str(uuidlib.uuid4())


async def make_provider(
    client: httpx.AsyncClient,
    inventories: dict[str, dict[str, Any]] | None = None,
    *,
    name: str | None = None,
    parent: str | None = None,
    uuid: str | None = None,
) -> str:
    """A provider (``rp-<uuid>`` unless named), with ``inventories`` if given."""
    rp_uuid = uuid or new_uuid()
    body: dict[str, Any] = {"name": name or f"rp-{rp_uuid}", "uuid": rp_uuid}
    if parent is not None:
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


def error(response: httpx.Response) -> dict[str, Any]:
    """The first (only) entry of an error body."""
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors[0]


def detail(response: httpx.Response) -> str:
    return str(error(response)["detail"])


def code(response: httpx.Response) -> str:
    """The error's ``code``; "None" when it has none."""
    return str(error(response).get("code"))
