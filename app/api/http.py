"""Helpers routers share: responses, negotiation, body parsing, cache headers."""

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from app.api.negotiation import accepts_json
from app.auth import RequestContext
from app.exceptions import InvalidInput, NotAcceptable, PlacementError, UnsupportedMediaType
from app.exceptions.limits import UnstorableCharacter
from app.microversion import CACHE_HEADERS, Version
from app.schemas.validation import validate as validate  # routers validate through http too

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            # An integer beyond 64 bits (a capacity with a huge allocation
            # ratio): the reference writes it out exactly, and so does json.
            return json.dumps(content, default=str, ensure_ascii=False).encode()


def version(request: Request) -> Version:
    """The request's microversion (negotiated by the request pipeline)."""
    found: Version = request.state.version
    return found


def route_path(scope: Scope) -> str:
    """The request path without the mount prefix (``--root-path``)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path):]
    return path


def context(request: Request) -> RequestContext:
    ctx: RequestContext = request.state.context
    return ctx


def authorize(request: Request, rule: str, target: dict[str, object] | None = None) -> None:
    request.app.state.authorizer.authorize(context(request), rule, target)


def check_accept(request: Request) -> None:
    """GET handlers answer 406 when the client cannot take JSON."""
    accept = request.headers.get("accept")
    if not accepts_json(accept):
        raise NotAcceptable("Only application/json is provided")


def require_json(request: Request) -> None:
    """Body handlers answer 415 unless the body is declared as JSON."""
    content_type = request.headers.get("content-type")
    media = content_type.split(";")[0].strip().lower() if content_type else None
    if media != "application/json":
        raise UnsupportedMediaType(
            f"The media type {content_type or None} is not supported, use application/json"
        )


# Bodies from this size up are parsed in a thread: parsing (and the scans for
# long numbers and NULs) of megabytes held a worker's event loop for 100+ ms.
PARSE_IN_THREAD = 256 * 1024


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) >= PARSE_IN_THREAD:
        return await asyncio.to_thread(parse_json, raw)
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """The body's JSON; 400 in the reference's words, or for a NUL."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput(f"Malformed JSON: {_json_error(raw)}") from None
    # orjson reads integers beyond 64 bits as floats; the reference keeps them
    # exact (an amount of 1e20 is an impossible amount, not a float). A regular
    # expression holds the GIL for its whole scan (~10 ms a megabyte), so a large
    # body's parsed values are looked at instead.
    if _LONG_NUMBER.search(raw) if len(raw) < PARSE_IN_THREAD else _has_huge_float(data):
        data = json.loads(raw)
    if b"\\u0000" in raw and _has_nul(data):
        raise UnstorableCharacter(where="the request body")
    return data


def _json_error(raw: bytes) -> str:
    """The reference's wording of a JSON syntax error (Python's json module)."""
    try:
        json.loads(raw)
    except ValueError as exc:
        return str(exc)
    return "invalid JSON"


_LONG_NUMBER = re.compile(rb"\d{19}")


def _has_huge_float(data: Any) -> bool:
    """A float where orjson may have read an integer beyond 64 bits."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if abs(item) >= 2.0**63:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _has_nul(data: Any) -> bool:
    """A NUL in any string, key or value (PostgreSQL cannot store one)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def judge_body(request: Request, parse: Callable[[Any], T]) -> T | PlacementError:
    """The JSON body as ``parse`` makes it, or the error judging it raised, for a
    service to raise after a lookup that answers first (``exceptions.judged``)."""
    try:
        return parse(await json_body(request))
    except PlacementError as exc:
        return exc


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    """Validate the JSON body against ``model``; failures become the reference's 400."""
    data = await json_body(request)
    return validate(data, model)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def http_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def cache_headers(
    request: Request, last_modified: datetime | None, *, omit_last_modified: bool = False
) -> dict[str, str]:
    """``Cache-Control``/``Last-Modified`` from 1.15 on (§2.8 of the spec)."""
    if version(request) < CACHE_HEADERS:
        return {}
    headers = {"cache-control": "no-cache"}
    if not omit_last_modified:
        headers["last-modified"] = http_date(last_modified or utcnow())
    return headers


def respond(
    request: Request,
    content: Any,
    *,
    status: int = 200,
    last_modified: datetime | None = None,
    cache: bool = True,
    omit_last_modified: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    all_headers = dict(headers or {})
    if cache:
        all_headers.update(
            cache_headers(request, last_modified, omit_last_modified=omit_last_modified)
        )
    return JSONResponse(content, status_code=status, headers=all_headers)


class EncodedJSON(JSONResponse):
    """A JSON response whose body is already encoded."""

    def render(self, content: Any) -> bytes:
        return bytes(content)


def respond_listing(
    request: Request,
    key: str,
    items: Sequence[T],
    represent: Callable[[T], Any],
    *,
    last_modified: datetime | None = None,
) -> JSONResponse:
    """``respond(request, {key: [represent(item) for item in items]})``, the same
    bytes, encoded one item at a time.

    A worker's small objects live in pymalloc arenas, which go back to the
    system only once wholly free, and the few objects a request keeps (cached
    statements and result descriptions) pin them: a listing built whole (1,800
    providers, 1.4 MB of JSON, ~6 MB of dicts and strings) stayed resident after
    the answer (issue 14). Here one item's dicts exist at a time, and the
    bytes grow in one buffer, a single large block rather than small objects.
    """
    body = bytearray(b'{"' + key.encode() + b'":[')
    try:
        for index, item in enumerate(items):
            if index:
                body += b","
            body += orjson.dumps(represent(item))
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits: the whole document takes the exact path.
        del body
        content = {key: [represent(item) for item in items]}
        return respond(request, content, last_modified=last_modified)
    body += b"]}"
    headers = cache_headers(request, last_modified, omit_last_modified=False)
    return EncodedJSON(bytes(body), headers=headers)


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    response = Response(status_code=status, headers=headers)
    return response


def link_prefix(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def location(request: Request, path: str) -> str:
    """An absolute URL for ``Location`` headers (links stay relative)."""
    base = str(request.base_url).rstrip("/")
    return f"{base}{path}"


def max_time(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None
