"""The Keystone validation cache, header stripping and bad answers, without a Keystone."""

import asyncio
import time
from pathlib import Path

from pydantic import SecretStr

from app.auth.keystone import IDENTITY_HEADERS, TokenCache, strip_identity_headers
from app.settings import KeystoneSettings, Settings
from tests.api_helpers import app_client


def test_cache_is_bounded_least_recently_used_out() -> None:
    cache = TokenCache(ttl=60, size=2)
    cache.put("a", {"user": {"id": "a"}})
    cache.put("b", None)
    assert cache.get("a") == (True, {"user": {"id": "a"}})  # a is now the most recent
    cache.put("c", {"user": {"id": "c"}})
    assert cache.get("b") == (False, None)
    assert cache.get("a")[0]
    assert cache.get("c")[0]
    assert cache.get("b") == (False, None)


def test_cache_entries_expire_with_ttl_or_token_expiry() -> None:
    cache = TokenCache(ttl=0.2, size=10)
    cache.put("a", {"user": {}})
    past = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 5))
    cache.put("expired", {"user": {}, "expires_at": past})
    assert cache.get("a")[0]
    assert cache.get("expired") == (False, None)
    time.sleep(0.25)
    assert cache.get("a") == (False, None)


def test_cache_keeps_no_raw_token() -> None:
    cache = TokenCache(ttl=60, size=10)
    cache.put("secret-token", None)
    assert "secret-token" not in repr(cache.__dict__)


def test_every_identity_header_is_stripped() -> None:
    for name in ("X-Identity-Status", "X-User-Id", "X-User-Name", "X-User-Domain-Id",
                 "X-Project-Id", "X-Project-Domain-Name", "X-Domain-Id", "X-Roles",
                 "X-Service-Roles", "X-Service-User-Id", "X-Service-Identity-Status",
                 "X-Is-Admin-Project", "X-Role", "X-Tenant-Id", "X-Tenant", "X-User",
                 "X-Service-Catalog", "OpenStack-System-Scope"):
        assert name.lower() in IDENTITY_HEADERS, name
    raw = [(b"X-Roles", b"admin"), (b"x-auth-token", b"t"), (b"X-User-Id", b"u")]
    assert strip_identity_headers(raw) == [(b"x-auth-token", b"t")]


async def test_something_else_than_keystone_is_503_not_500(tmp_path: Path) -> None:
    """An auth_url that answers, but not as Keystone does: 503, never a 500."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.sqlite",
        auth_strategy="keystone",
        keystone=KeystoneSettings(auth_url="http://127.0.0.1:1/v3", username="u",
                                  password=SecretStr("p"), project_name="p",
                                  http_request_max_retries=0),
    )
    async with app_client(settings) as client:
        response = await client.get("/resource_providers", headers={"x-auth-token": "t"})
    assert response.status_code == 503
    server = await asyncio.start_server(_not_keystone, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings.keystone.auth_url = f"http://127.0.0.1:{port}/v3"
    async with server, app_client(settings) as client:
        response = await client.get("/resource_providers", headers={"x-auth-token": "t"})
    assert response.status_code == 503, response.text


async def _not_keystone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    body = b"<html>a proxy's error page</html>"
    writer.write(b"HTTP/1.1 201 Created\r\ncontent-type: text/html\r\nx-subject-token: t\r\n"
                 b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    writer.close()
