"""Bounds on one request, checked before routing (issue 12, README "Limits").

* a URL (path and query string) over ``max_url_length`` bytes: 414;
* a body over ``max_body_bytes``: 413, from ``Content-Length`` up front, or
  counted as the body is read (chunked bodies);
* a NUL in the path or the query string: 400 (PostgreSQL cannot store or
  compare it; the reference answers 500 there).

Runs inside ``PlacementMiddleware`` so that refusals carry the request id and
the microversion headers, in the placement error format.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response, status_of
from app.exceptions import PlacementError
from app.exceptions.limits import RequestTooLarge, UnstorableCharacter, URITooLong
from app.query import QueryLimits
from app.settings import Settings


def query_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(
        max_param_repeats=settings.max_param_repeats,
        max_request_groups=settings.max_request_groups,
        max_in_items=settings.max_in_items,
        max_traits_per_group=settings.max_traits_per_group,
    )


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query or b"\x00" in query


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.max_url = settings.max_url_length
        self.max_body = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        error: PlacementError | None = None
        if len(raw_path) + len(query) + 1 > self.max_url:
            error = URITooLong(limit=self.max_url)
        elif _has_nul(scope):
            error = UnstorableCharacter(where="the URL")
        else:
            length = _content_length(scope)
            if length is not None and length > self.max_body:
                error = RequestTooLarge(limit=self.max_body)
        if error is not None:
            await _refuse(scope, receive, send, error)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the handler's body read: rendered as 413.
                    raise RequestTooLarge(limit=limit)
            return message

        return counted


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # PlacementMiddleware answers 400 for it
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, error: PlacementError) -> None:
    state = scope.get("state") or {}
    headers = {key.decode("latin-1").lower(): value.decode("latin-1")
               for key, value in scope["headers"]}
    method: str = scope["method"]
    response = error_response(
        status_of(error), error.message,
        request_id=state.get("request_id", ""), version=state.get("version"),
        code=error.code, method=method, accept=headers.get("accept"),
        content_type=headers.get("content-type"),
    )
    await response(scope, receive, send)
