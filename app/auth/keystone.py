"""Keystone token validation with the behaviour of keystonemiddleware's auth_token.

Natively async (httpx): nothing here blocks the event loop.

* Every identity header a client sends is removed first (``strip_identity_headers``):
  the context is built from Keystone's answer only.
* ``X-Auth-Token`` is validated with ``GET /v3/auth/tokens`` carrying the
  service's own token, obtained with the password credentials of
  ``[keystone_authtoken]``. An ``X-Service-Token`` is validated too; its roles
  become the context's *service* roles, and without one of
  ``service_token_roles`` (when ``service_token_roles_required``) it is invalid.
* Missing or invalid token (or invalid service token): 401 with
  ``WWW-Authenticate: Keystone uri="..."`` and keystonemiddleware's body.
* Answers (valid and invalid) are cached in process, bounded, for
  ``token_cache_time`` seconds (never past the token's expiry); a revoked token
  is refused once its entry expires.
* Keystone unreachable, failing or hanging: :class:`IdentityUnavailable` (503)
  once the retries or the overall deadline (``validation_timeout``) run out.
"""

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

import httpx

from app.auth.context import IdentityUnavailable, RequestContext, Unauthenticated
from app.settings import KeystoneSettings

LOG = logging.getLogger(__name__)

UNAUTHORIZED_BODY = json.dumps({"error": {
    "code": 401,
    "title": "Unauthorized",
    "message": "The request you have made requires authentication.",
}}).encode()

_FIELDS = ("Domain-Id", "Domain-Name", "Project-Id", "Project-Name", "Project-Domain-Id",
           "Project-Domain-Name", "User-Id", "User-Name", "User-Domain-Id",
           "User-Domain-Name", "Roles")
# keystonemiddleware's family of identity headers, plus the system scope it sets.
IDENTITY_HEADERS = frozenset(
    {f"x{prefix}-{name}".lower() for prefix in ("", "-service") for name in _FIELDS}
    | {"x-identity-status", "x-service-identity-status", "x-is-admin-project",
       "x-service-catalog", "x-role", "x-user", "x-tenant-id", "x-tenant-name", "x-tenant",
       "openstack-system-scope"}
)


def strip_identity_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(key, value) for key, value in raw
            if key.decode("latin-1").lower() not in IDENTITY_HEADERS]


def _expiry(token: dict[str, Any]) -> float:
    """The token's expiry as a wall-clock timestamp (0: unknown)."""
    text = token.get("expires_at")
    if not isinstance(text, str):
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class TokenCache:
    """Validation answers by token digest, least recently used first out."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> tuple[bool, dict[str, Any] | None]:
        key = self.key(token)
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        until, data = entry
        if time.time() >= until:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, data

    def put(self, token: str, data: dict[str, Any] | None) -> None:
        if self.ttl <= 0 or self.size <= 0:
            return
        until = time.time() + self.ttl
        if data is not None and _expiry(data):
            until = min(until, _expiry(data))
        self._entries[self.key(token)] = (until, data)
        self._entries.move_to_end(self.key(token))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class _InvalidToken(Exception):
    pass


class _ServiceRejected(Exception):
    """Keystone refused the service's own token (expired or revoked)."""


class KeystoneAuthenticator:
    def __init__(self, settings: KeystoneSettings) -> None:
        self.settings = settings
        self.cache = TokenCache(settings.token_cache_time, settings.token_cache_size)
        uri = settings.www_authenticate_uri or settings.auth_url or ""
        self.reject_headers = ((b"www-authenticate", f'Keystone uri="{uri}"'.encode()),)
        attempt = settings.http_connect_timeout or min(2.0, settings.validation_timeout)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(attempt), trust_env=False)
        self._service_token: str | None = None
        self._service_expiry = 0.0
        self._endpoint: str | None = None
        self._lock = asyncio.Lock()
        if settings.memcached_servers:
            LOG.warning("[keystone_authtoken] memcached_servers is set; this service caches "
                        "validated tokens in process only (token_cache_size per worker)")

    async def aclose(self) -> None:
        await self._client.aclose()

    def unauthenticated(self) -> Unauthenticated:
        return Unauthenticated(UNAUTHORIZED_BODY, self.reject_headers)

    async def authenticate(self, headers: dict[str, str], request_id: str) -> RequestContext:
        token = headers.get("x-auth-token") or headers.get("x-storage-token")
        if not token:
            raise self.unauthenticated()
        try:
            async with asyncio.timeout(self.settings.validation_timeout):
                user = await self._validated(token)
                service_token = headers.get("x-service-token")
                service = await self._validated(service_token) if service_token else None
        except TimeoutError:
            LOG.error("keystone did not answer within %s s", self.settings.validation_timeout)
            raise IdentityUnavailable() from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Not the answers Keystone gives (a proxy's error page, another service).
            LOG.error("unexpected answer from keystone: %s: %s", type(exc).__name__, exc)
            raise IdentityUnavailable() from None
        if user is None:
            raise self.unauthenticated()
        if service_token:
            if service is None or not self._is_service(service):
                LOG.info("invalid service token")
                raise self.unauthenticated()
        return _context(user, service, request_id)

    def _is_service(self, token: dict[str, Any]) -> bool:
        if not self.settings.service_token_roles_required:
            return True
        wanted = {role.lower() for role in self.settings.service_token_roles}
        return bool(wanted & {role.lower() for role in _role_names(token)})

    async def _validated(self, token: str) -> dict[str, Any] | None:
        """Keystone's token body, or None when the token is invalid."""
        hit, data = self.cache.get(token)
        if hit:
            return data
        try:
            data = await self._validate(token)
        except _InvalidToken:
            data = None
        self.cache.put(token, data)
        return data

    async def _validate(self, token: str) -> dict[str, Any]:
        for _ in range(2):  # once more with a fresh service token
            service = await self._service_auth()
            assert self._endpoint is not None
            try:
                response = await self._request(
                    "GET", f"{self._endpoint}/auth/tokens",
                    headers={"x-auth-token": service, "x-subject-token": token},
                )
            except _ServiceRejected:
                self._service_token = None
                continue
            if response.status_code == 404:
                raise _InvalidToken()
            body = response.json()
            data = body.get("token") if isinstance(body, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("user"), dict):
                raise _InvalidToken()
            if _expiry(data) and _expiry(data) <= time.time():
                raise _InvalidToken()
            return data
        LOG.error("keystone refuses the service's own credentials")
        raise IdentityUnavailable()

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call with keystonemiddleware's retries (0.5, 1, 2 s apart)."""
        delay = 0.5
        for attempt in range(self.settings.http_request_max_retries + 1):
            try:
                response = await self._client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in (401, 403):
                    raise _ServiceRejected()
                if response.status_code < 500:
                    return response
                failure = f"HTTP {response.status_code}"
            LOG.warning("keystone call failed (attempt %d): %s", attempt + 1, failure)
            if attempt < self.settings.http_request_max_retries:
                await asyncio.sleep(delay)
                delay *= 2
        raise IdentityUnavailable()

    async def _service_auth(self) -> str:
        """The service's own token (refreshed a minute before it expires)."""
        async with self._lock:
            if self._service_token and time.time() < self._service_expiry - 60:
                return self._service_token
            base = await self._identity_v3()
            try:
                response = await self._request(
                    "POST", f"{base}/auth/tokens", json=self._password_body()
                )
            except _ServiceRejected:
                LOG.error("keystone refuses the credentials of [keystone_authtoken]")
                raise IdentityUnavailable() from None
            if response.status_code != 201:
                LOG.error("keystone answered %s to the service's authentication",
                          response.status_code)
                raise IdentityUnavailable()
            data = response.json().get("token", {})
            self._service_token = response.headers.get("x-subject-token")
            self._service_expiry = _expiry(data) or time.time() + 3600
            self._endpoint = self._catalog_endpoint(data) or base
            assert self._service_token is not None
            return self._service_token

    def _password_body(self) -> dict[str, Any]:
        s = self.settings
        user: dict[str, Any] = {"name": s.username, "password": s.password.get_secret_value()}
        user["domain"] = {"id": s.user_domain_id} if s.user_domain_id else {
            "name": s.user_domain_name}
        scope: dict[str, Any]
        if s.system_scope:
            scope = {"system": {s.system_scope: True}}
        else:
            domain = {"id": s.project_domain_id} if s.project_domain_id else {
                "name": s.project_domain_name}
            scope = {"project": {"name": s.project_name, "domain": domain}}
        return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                         "scope": scope}}

    def _catalog_endpoint(self, token: dict[str, Any]) -> str | None:
        """The identity endpoint of the configured interface (and region)."""
        for service in token.get("catalog") or []:
            if service.get("type") != "identity":
                continue
            for endpoint in service.get("endpoints") or []:
                if endpoint.get("interface") != self.settings.interface:
                    continue
                region = self.settings.region_name
                if region and endpoint.get("region_id", endpoint.get("region")) != region:
                    continue
                url = str(endpoint.get("url", "")).rstrip("/")
                return url if url.endswith("/v3") else f"{url}/v3"
        return None

    async def _identity_v3(self) -> str:
        """Discovery: ``auth_url`` itself when it names v3, else its v3 version."""
        url = (self.settings.auth_url or "").rstrip("/")
        if url.endswith("/v3"):
            return url
        response = await self._request("GET", url, headers={"accept": "application/json"})
        versions = response.json().get("versions", {})
        values = versions.get("values", []) if isinstance(versions, dict) else []
        for version in values:
            if str(version.get("id", "")).startswith("v3"):
                for link in version.get("links", []):
                    if link.get("rel") == "self":
                        return str(link["href"]).rstrip("/")
        return f"{url}/v3"


def _role_names(token: dict[str, Any]) -> list[str]:
    return [str(role["name"]) for role in token.get("roles") or [] if "name" in role]


def _context(user: dict[str, Any], service: dict[str, Any] | None,
             request_id: str) -> RequestContext:
    person = user.get("user") or {}
    project = user.get("project") or {}
    system = user.get("system") or {}
    service_user = (service or {}).get("user") or {}
    service_project = (service or {}).get("project") or {}
    return RequestContext(
        user_id=person.get("id"),
        user_domain_id=(person.get("domain") or {}).get("id"),
        project_id=project.get("id"),
        project_domain_id=(project.get("domain") or {}).get("id"),
        roles=_role_names(user),
        system_scope="all" if system.get("all") else None,
        domain_id=(user.get("domain") or {}).get("id"),
        is_admin_project=bool(user.get("is_admin_project", True)),
        request_id=request_id,
        service_user_id=service_user.get("id"),
        service_project_id=service_project.get("id"),
        service_roles=_role_names(service) if service else [],
    )
