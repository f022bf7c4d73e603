"""Routing by the first segment of the path: one dictionary look-up per request.

FastAPI tries the routes of an app in turn, and each included router wraps its
routes in a layer that costs ~10 us a router tried before the match; ``PUT
/resource_providers/{uuid}/traits`` tried about eight. No two declared paths
overlap (``RouteTable``), and every path starts with a literal segment, so the
routes that can match a request are those declared under its first segment:
:class:`RouteIndex` is the app's only route and tries just those, in their
order. A path matching no route, or only with another method, gets the answer
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


def _first_segment(path: str) -> str:
    return path[1:].partition("/")[0]


class RouteIndex(BaseRoute):
    """The routes of an app, grouped by the literal first segment of their paths."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes = list(routes)
        self._by_segment: dict[str, list[BaseRoute]] = {}
        for route in self.routes:
            path: str = getattr(route, "path", "")
            segment = _first_segment(path)
            if not path.startswith("/") or "{" in segment:
                # An index needs a literal first segment; none is declared otherwise.
                raise ValueError(f"route {path!r} cannot be indexed by its first segment")
            self._by_segment.setdefault(segment, []).append(route)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        candidates = self._by_segment.get(_first_segment(route_path(scope)), ())
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
