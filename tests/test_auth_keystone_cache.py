"""The Keystone validation cache and header stripping, without a Keystone."""

import time

from app.auth.keystone import IDENTITY_HEADERS, TokenCache, strip_identity_headers


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
