"""The outermost layer of the app: path prefix, metrics and the access log.

Per request it

* normalises the path when the service is mounted under a prefix
  (``--root-path /placement``): uvicorn prepends the root path to what the
  client sent, so a proxy that strips the prefix and one that passes it both
  work, and the bare prefix (``/placement``) is the root document;
* counts the request by route template, method, status and microversion, and
  times it; counts generation conflicts (409 ``placement.concurrent_update``)
  and exports the database's retry counters;
* writes one access-log record.

The route templates come from the app's route table (given by the app
factory), so arbitrary paths never become label values.
"""

import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.http import route_path
from app.exceptions import CONCURRENT_UPDATE
from app.microversion import format_version
from app.observability import metrics
from app.observability.access_log import log_request

UNMATCHED_ROUTE = "<unmatched>"

TemplateOf = Callable[[str], str | None]


def _normalize_prefix(scope: Scope) -> None:
    root: str = scope.get("root_path", "") or ""
    if not root:
        return
    root = root.rstrip("/")
    path: str = scope["path"]
    doubled = root + root
    if path == doubled or path.startswith(doubled + "/"):
        # The proxy passed the prefix on and uvicorn prepended it again.
        path = path[len(root):]
    if path == root:
        # The bare prefix is the root document (as the reference answers it).
        path = root + "/"
    if path != scope["path"]:
        scope["path"] = path
        scope["raw_path"] = path.encode()


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, template_of: TemplateOf) -> None:
        self.app = app
        self.template_of = template_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _normalize_prefix(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            metrics.IN_PROGRESS.dec()
            self._record(scope, status, time.perf_counter() - started)

    def _route_template(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        # Not routed (answered by a middleware: 401, microversion 400/406, ...).
        return self.template_of(route_path(scope)) or UNMATCHED_ROUTE

    def _record(self, scope: Scope, status: int, duration: float) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        method: str = scope["method"]
        route = self._route_template(scope)
        version = state.get("version")
        microversion = format_version(version) if version else None
        metrics.observe_request(route, method, status, microversion or "none", duration)
        if status == 409 and state.get("error_code") == CONCURRENT_UPDATE:
            metrics.observe_generation_conflict(route, method)
        app_state = getattr(scope.get("app"), "state", None)
        database = getattr(app_state, "database", None)
        metrics.export_database_stats(getattr(database, "stats", None))
        log_request(scope, route, status, duration, microversion)
