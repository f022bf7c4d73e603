"""Routing by the shape of the path: two dictionary look-ups per request.

FastAPI tries the routes of an app in turn, and each included router wraps its
routes in a layer that costs ~10 us a router tried before the match; ``PUT
/resource_providers/{uuid}/traits`` tried about eight. No two declared paths
overlap (``RouteTable``), and every path starts with a literal segment, so the
routes that can match a request are the few of its shape (first segment,
length, last segment): :class:`RouteIndex` is the app's only route and tries
just those. A path matching no route, or only with another method, gets the answer
it got before (404, or 405 through the ``Match.PARTIAL`` of Starlette's router).
"""

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.routing import APIRouter
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from app.api.http import route_path

# The scope key carrying the matched route from ``matches`` to ``handle``.
_MATCHED = "placement.matched_route"


# The key of a template segment that is (or holds) a parameter.
_ANY = "{}"


def _key(segments: list[str], last: str) -> tuple[str, int, str]:
    return segments[0], len(segments), last


class RouteIndex(BaseRoute):
    """The routes of an app, grouped by the shape of their paths.

    A template's key is its first segment, its number of segments and its last
    segment (``{}`` for a parameter): a ``str`` parameter never holds a ``/``,
    so a request path can only match the templates of its own key or of the
    same key with a parameter last.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes = list(routes)
        self._by_key: dict[tuple[str, int, str], list[BaseRoute]] = {}
        for route in self.routes:
            path: str = getattr(route, "path", "")
            segments = path[1:].split("/")
            if not path.startswith("/") or "{" in segments[0] or ":" in path:
                # Declared paths start with a literal and use plain parameters.
                raise ValueError(f"route {path!r} cannot be indexed by its shape")
            last = _ANY if "{" in segments[-1] else segments[-1]
            self._by_key.setdefault(_key(segments, last), []).append(route)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        segments = route_path(scope)[1:].split("/")
        found = self._by_key.get
        candidates = (*found(_key(segments, segments[-1]), ()),
                      *found(_key(segments, _ANY), ()))
        partial: tuple[BaseRoute, Scope] | None = None
        for route in candidates:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                child_scope[_MATCHED] = route
                return match, child_scope
            if match is Match.PARTIAL and partial is None:
                partial = route, child_scope
        if partial is None:
            return Match.NONE, {}
        route, child_scope = partial
        child_scope[_MATCHED] = route
        return Match.PARTIAL, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_MATCHED)
        await route.handle(scope, receive, send)


def install(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Serve ``routers``' routes (in that order) and the routes already added to
    ``app`` through one :class:`RouteIndex`, instead of including the routers."""
    routes = [route for router in routers for route in router.routes]
    app.router.routes[:] = [RouteIndex([*routes, *app.router.routes])]
