"""The service behind a real Keystone: the issue's acceptance checks, one by one.

Each check was first run against the reference (keystonemiddleware in front of
OpenStack Placement 16.0) behind the same Keystone; the expected answers are
what it gave (except a hanging Keystone, where it answered 500 after 30 s).
"""

import asyncio
import time

import httpx
import pytest

from app.auth.keystone import UNAUTHORIZED_BODY
from tests.api_helpers import app_client, new_uuid
from tests.keystone.conftest import keystone_settings
from tests.keystone.server import KeystoneServer

LATEST = {"openstack-api-version": "placement latest"}
SPOOFED = {
    "x-user-id": "mallory", "x-user": "mallory", "x-roles": "admin,service",
    "x-role": "admin", "x-project-id": "p", "x-tenant-id": "p",
    "x-identity-status": "Confirmed", "x-service-roles": "service",
    "x-service-identity-status": "Confirmed", "x-is-admin-project": "True",
    "openstack-system-scope": "all",
}


def auth(token: str, **more: str) -> dict[str, str]:
    return {"x-auth-token": token, **more}


def assert_unauthorized(response: httpx.Response, keystone: KeystoneServer) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == f'Keystone uri="{keystone.url}"'
    assert response.content == UNAUTHORIZED_BODY
    assert response.json()["error"]["code"] == 401
    assert response.headers["x-openstack-request-id"].startswith("req-")


async def test_no_token_is_401_with_www_authenticate(
    client: httpx.AsyncClient, keystone: KeystoneServer
) -> None:
    assert_unauthorized(await client.get("/resource_providers"), keystone)


async def test_bogus_token_is_401(client: httpx.AsyncClient, keystone: KeystoneServer) -> None:
    response = await client.get("/resource_providers", headers=auth("not-a-token"))
    assert_unauthorized(response, keystone)


async def test_version_document_needs_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).status_code == 200


async def test_admin_token_is_200(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    response = await client.get("/resource_providers", headers=auth(tokens["admin"]))
    assert response.status_code == 200, response.text
    created = await client.post("/resource_providers", headers=auth(tokens["admin"]),
                                json={"name": "by-admin"})
    assert created.status_code == 200, created.text


async def test_spoofed_identity_headers_without_token_are_401(
    client: httpx.AsyncClient, keystone: KeystoneServer
) -> None:
    response = await client.get("/resource_providers", headers=SPOOFED)
    assert_unauthorized(response, keystone)


async def test_spoofed_identity_headers_with_a_member_token_are_ignored(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    response = await client.get("/resource_providers", headers=auth(tokens["member"], **SPOOFED))
    assert response.status_code == 403, response.text
    assert "placement:resource_providers:list" in response.json()["errors"][0]["detail"]


async def test_member_and_reader_cannot_write(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    for who in ("member", "reader"):
        response = await client.post("/resource_providers", headers=auth(tokens[who]),
                                     json={"name": f"by-{who}"})
        assert response.status_code == 403, (who, response.text)
        assert "placement:resource_providers:create" in response.text


async def test_reader_reads_its_own_project_usages_only(
    client: httpx.AsyncClient, tokens: dict[str, str], keystone: KeystoneServer
) -> None:
    own = keystone.users["rita"].project_id
    response = await client.get(f"/usages?project_id={own}", headers=auth(tokens["reader"]))
    assert response.status_code == 200, response.text
    other = await client.get(f"/usages?project_id={new_uuid()}", headers=auth(tokens["reader"]))
    assert other.status_code == 403, other.text


async def test_revoked_token_is_refused_within_token_cache_time(
    client: httpx.AsyncClient, keystone: KeystoneServer, tokens: dict[str, str]
) -> None:
    token = keystone.admin_token()
    assert (await client.get("/resource_providers", headers=auth(token))).status_code == 200
    keystone.revoke(token)
    revoked_at = time.monotonic()
    # token_cache_time is 2 s here: the cached answer may serve until then, no longer.
    while True:
        response = await client.get("/resource_providers", headers=auth(token))
        if response.status_code == 401:
            break
        assert response.status_code == 200
        assert time.monotonic() - revoked_at < 2.5, "revoked token still accepted"
        await asyncio.sleep(0.2)
    assert_unauthorized(response, keystone)
    other = await client.get("/resource_providers", headers=auth(tokens["admin"]))
    assert other.status_code == 200, "another token was affected"


async def test_a_hanging_keystone_blocks_no_other_request(
    keystone: KeystoneServer, tokens: dict[str, str], database_url: str
) -> None:
    settings = keystone_settings(keystone, database_url, token_cache_time=300)
    async with app_client(settings, LATEST) as client:
        # Validated (and cached) before Keystone hangs: served while another request waits.
        cached = auth(tokens["admin"])
        assert (await client.get("/resource_providers", headers=cached)).status_code == 200
        fresh = keystone.admin_token()
        keystone.pause()
        try:
            waiting = asyncio.create_task(
                client.get("/resource_providers", headers=auth(fresh)))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            served = await client.get("/resource_providers", headers=cached)
            elapsed = time.monotonic() - started
            assert not waiting.done()
            assert served.status_code == 200
            assert elapsed < 1.0, elapsed
            assert (await waiting).status_code == 503
        finally:
            keystone.resume()


@pytest.mark.parametrize(("lose", "restore"), [("stop", "start"), ("pause", "resume")],
                         ids=["stopped", "hanging"])
async def test_keystone_stopped_or_hanging_is_503_within_10_s(
    client: httpx.AsyncClient, keystone: KeystoneServer, lose: str, restore: str
) -> None:
    token = keystone.admin_token()  # never validated yet: not cached
    getattr(keystone, lose)()  # stop: connections refused; pause (SIGSTOP): no answer
    try:
        started = time.monotonic()
        response = await client.get("/resource_providers", headers=auth(token))
        elapsed = time.monotonic() - started
    finally:
        getattr(keystone, restore)()
    assert response.status_code == 503, response.text
    assert response.json()["message"].endswith(
        "The Keystone service is temporarily unavailable.\n\n")
    assert elapsed < 10, elapsed
    # Keystone back: the same token works.
    assert (await client.get("/resource_providers", headers=auth(token))).status_code == 200


async def test_service_user_token_reaches_the_reshaper(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    # It passes the policy (role:service) and reaches the body's validation.
    response = await client.post("/reshaper", headers=auth(tokens["service"]), json={})
    assert response.status_code == 400, response.text
    assert "'inventories' is a required property" in response.text


async def test_spoofed_service_roles_do_not_reach_the_reshaper(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    spoofed = auth(tokens["member"], **{"x-roles": "service", "x-service-roles": "service"})
    response = await client.post("/reshaper", headers=spoofed, json={})
    assert response.status_code == 403, response.text
    # A real service token's roles are service roles: the reshaper checks the user's.
    with_service = auth(tokens["member"], **{"x-service-token": tokens["service"]})
    response = await client.post("/reshaper", headers=with_service, json={})
    assert response.status_code == 403, response.text
    assert "placement:reshaper:reshape" in response.text


async def test_bogus_service_token_is_401(
    client: httpx.AsyncClient, tokens: dict[str, str], keystone: KeystoneServer
) -> None:
    bogus = auth(tokens["admin"], **{"x-service-token": "bogus"})
    assert_unauthorized(await client.get("/resource_providers", headers=bogus), keystone)
    # A valid token without the service role is no service token either.
    member = auth(tokens["admin"], **{"x-service-token": tokens["member"]})
    assert_unauthorized(await client.get("/resource_providers", headers=member), keystone)
    good = auth(tokens["admin"], **{"x-service-token": tokens["service"]})
    assert (await client.get("/resource_providers", headers=good)).status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json"])
async def test_docs_and_metrics_need_a_token_by_default_under_keystone(
    client: httpx.AsyncClient, tokens: dict[str, str], keystone: KeystoneServer, path: str
) -> None:
    assert_unauthorized(await client.get(path), keystone)
    assert (await client.get(path, headers=auth(tokens["reader"]))).status_code == 200


async def test_docs_and_metrics_public_when_configured(
    keystone: KeystoneServer, database_url: str
) -> None:
    settings = keystone_settings(keystone, database_url)
    settings = settings.model_copy(update={"public_docs_and_metrics": True})
    async with app_client(settings, LATEST) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/resource_providers")).status_code == 401
