"""Listings encoded item by item (``http.respond_listing``): the bytes and
headers of the whole-document encoding, with one item's representation alive
at a time (a large listing's objects otherwise stay resident in the worker)."""

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from starlette.requests import Request

from app.api import http
from app.microversion import parse_version
from tests.api_helpers import make_provider, microversion

MOMENT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _request(version: str) -> Request:
    return Request({"type": "http", "headers": [], "state": {"version": parse_version(version)}})


def _same(item: dict[str, Any]) -> dict[str, Any]:
    return item


def _headers(response: Any) -> list[tuple[bytes, bytes]]:
    return sorted(response.raw_headers)


async def test_the_provider_list_is_the_compact_document(client: httpx.AsyncClient) -> None:
    for index in range(3):
        await make_provider(client, name=f"listed-{index}")
    for version, cached in (("latest", True), ("1.0", False)):
        response = await client.get("/resource_providers", headers=microversion(version))
        assert response.status_code == 200
        assert response.content == orjson.dumps(response.json())
        assert len(response.json()["resource_providers"]) == 3
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-length"] == str(len(response.content))
        assert ("last-modified" in response.headers) is cached
        assert ("cache-control" in response.headers) is cached
    response = await client.get("/resource_providers?name=none", headers=microversion("latest"))
    assert response.content == b'{"resource_providers":[]}'


def test_same_bytes_and_headers_as_the_whole_document() -> None:
    items: list[dict[str, Any]] = [{"name": "a", "n": 1}, {"name": "b", "links": [{"rel": "self"}]}]
    for version in ("1.0", "1.39"):
        whole = http.respond(_request(version), {"things": items}, last_modified=MOMENT)
        listed = http.respond_listing(
            _request(version), "things", items, _same, last_modified=MOMENT
        )
        assert listed.body == whole.body
        assert _headers(listed) == _headers(whole)
        assert listed.status_code == whole.status_code


def test_an_integer_beyond_64_bits_takes_the_exact_path() -> None:
    items: list[dict[str, Any]] = [{"capacity": 1}, {"capacity": 2**70}]
    whole = http.respond(_request("1.39"), {"things": items}, last_modified=MOMENT)
    listed = http.respond_listing(_request("1.39"), "things", items, _same, last_modified=MOMENT)
    assert str(2**70).encode() in whole.body
    assert listed.body == whole.body
    assert _headers(listed) == _headers(whole)


@dataclass(eq=False)  # hashable by identity, for the WeakSet
class _Shown:
    name: str


def test_one_representation_alive_at_a_time() -> None:
    alive: weakref.WeakSet[_Shown] = weakref.WeakSet()
    most = 0

    def represent(name: str) -> _Shown:
        nonlocal most
        shown = _Shown(name)
        alive.add(shown)
        most = max(most, len(alive))
        return shown

    names = [f"item-{index}" for index in range(50)]
    response = http.respond_listing(_request("1.39"), "things", names, represent)
    assert orjson.loads(response.body) == {"things": [{"name": name} for name in names]}
    assert most == 1
