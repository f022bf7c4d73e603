"""A real Keystone for the Keystone tests, started once per session.

Skips when the Keystone venv is absent (``.ci/keystone.sh`` builds it;
``make test-keystone`` and CI's ``keystone`` step do so first).
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import KeystoneSettings, Settings
from tests.api_helpers import app_client
from tests.keystone.server import PASSWORD, KeystoneServer, keystone_available


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    if not keystone_available():
        pytest.skip("no Keystone venv: run .ci/keystone.sh (make test-keystone does)")
    server = KeystoneServer(tmp_path_factory.mktemp("keystone"))
    server.setup()
    server.start()
    try:
        server.populate()
        yield server
    finally:
        server.resume()
        server.stop()


@pytest.fixture(scope="session")
def tokens(keystone: KeystoneServer) -> dict[str, str]:
    """Project-scoped tokens: admin, the service user, a member and a reader."""
    return {
        "admin": keystone.admin_token(),
        "service": keystone.user_token("placement"),
        "member": keystone.user_token("alice"),
        "reader": keystone.user_token("rita"),
    }


def keystone_settings(keystone: KeystoneServer, database_url: str,
                      **overrides: object) -> Settings:
    options: dict[str, object] = {
        "www_authenticate_uri": keystone.url,
        "auth_url": keystone.url,
        "username": "placement",
        "password": PASSWORD,
        "project_name": "service",
        **overrides,
    }
    return Settings(
        database_url=database_url,
        auth_strategy="keystone",
        keystone=KeystoneSettings.model_validate(options),
    )


@pytest.fixture
def settings(keystone: KeystoneServer, database_url: str) -> Settings:
    return keystone_settings(keystone, database_url, token_cache_time=2)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the keystone-configured app, at the latest microversion, no token."""
    async with app_client(settings, {"openstack-api-version": "placement latest"}) as http:
        yield http


@pytest.fixture
def keystone_dir(keystone: KeystoneServer) -> Path:
    return keystone.directory
