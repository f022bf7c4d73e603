"""Operations: Prometheus metrics, the structured access log, path-prefix mounting.

:class:`OpsMiddleware` is the outermost layer of the app. Per request it

* normalises the path when the service is mounted under a prefix
  (``--root-path /placement``): uvicorn prepends the root path to what the
  client sent, so a proxy that strips the prefix and one that passes it both
  work, and the bare prefix (``/placement``) is the root document;
* counts the request by route template, method, status and microversion, and
  times it (histogram by route template and method);
* counts generation conflicts (409 ``placement.concurrent_update``) and the
  serialization retries of :class:`app.db.engine.RetryStats`;
* writes one access-log record (logger ``app.access``) with the request id,
  user, project, microversion, status and duration.

Metrics are multiprocess-safe when ``PROMETHEUS_MULTIPROC_DIR`` is set before
the workers start (``placement-api --workers N`` does it).
"""

import logging
import os
import re
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.engine import RetryStats
from app.errors import CONCURRENT_UPDATE
from app.microversion import format_version
from app.middleware import route_path

ACCESS_LOG = logging.getLogger("app.access")

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus-client writes its per-process files there from the first sample on.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

UNMATCHED_ROUTE = "<unmatched>"

REQUESTS = Counter(
    "placement_http_requests",
    "HTTP requests answered, by route template, method, status and microversion.",
    ["route", "method", "status", "microversion"],
)
LATENCY = Histogram(
    "placement_http_request_duration_seconds",
    "Time from the request reaching the app to the end of the response.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge(
    "placement_http_requests_in_progress",
    "Requests being handled.",
    multiprocess_mode="livesum",
)
GENERATION_CONFLICTS = Counter(
    "placement_generation_conflicts",
    "Requests answered 409 placement.concurrent_update (provider or consumer generation "
    "conflicts, exhausted retries).",
    ["route", "method"],
)
SERIALIZATION_RETRIES = Counter(
    "placement_db_serialization_retries",
    "Units of work retried after a database serialization failure.",
)


# Labelled children, looked up once (labels() validates and locks on every call).
_REQUEST_CHILDREN: dict[tuple[str, str, int, str], Any] = {}
_LATENCY_CHILDREN: dict[tuple[str, str], Any] = {}


class _RetryExport:
    """Carries RetryStats' process-local count into the (multiprocess) counter."""

    seen = 0

    @classmethod
    def sync(cls) -> None:
        current = RetryStats.serialization_retries
        if current > cls.seen:
            SERIALIZATION_RETRIES.inc(current - cls.seen)
        cls.seen = current


def render_metrics() -> tuple[bytes, str]:
    """The exposition text of this process, or of all workers in multiprocess mode."""
    _RetryExport.sync()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


_TEMPLATES: list[tuple[re.Pattern[str], str]] = []


def _templates() -> list[tuple[re.Pattern[str], str]]:
    if not _TEMPLATES:
        from app.routers import ALL_ROUTERS  # late: the routers import this module

        seen: set[str] = set()
        for router in ALL_ROUTERS:
            for route in router.routes:
                path = getattr(route, "path", None)
                if isinstance(path, str) and path not in seen:
                    seen.add(path)
                    _TEMPLATES.append((compile_path(path)[0], path))
    return _TEMPLATES


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Not routed (answered by a middleware: 401, microversion 400/406, ...):
    # find the template, never letting arbitrary paths become label values.
    path = route_path(scope)
    for regex, template in _templates():
        if regex.match(path):
            return template
    return UNMATCHED_ROUTE


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


class OpsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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

        IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            IN_PROGRESS.dec()
            self._record(scope, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, status: int, duration: float) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        method: str = scope["method"]
        route = _route_template(scope)
        version = state.get("version")
        microversion = format_version(version) if version else "none"
        key = (route, method, status, microversion)
        counter = _REQUEST_CHILDREN.get(key)
        if counter is None:
            counter = _REQUEST_CHILDREN[key] = REQUESTS.labels(
                route, method, str(status), microversion)
        counter.inc()
        histogram = _LATENCY_CHILDREN.get((route, method))
        if histogram is None:
            histogram = _LATENCY_CHILDREN[(route, method)] = LATENCY.labels(route, method)
        histogram.observe(duration)
        if status == 409 and state.get("error_code") == CONCURRENT_UPDATE:
            GENERATION_CONFLICTS.labels(route, method).inc()
        _RetryExport.sync()
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            context = state.get("context")
            client = scope.get("client")
            query = scope.get("query_string", b"")
            path = scope["path"] + (f"?{query.decode('latin-1')}" if query else "")
            ACCESS_LOG.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "request_id": state.get("request_id"),
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "microversion": microversion if version else None,
                    "user_id": getattr(context, "user_id", None),
                    "project_id": getattr(context, "project_id", None),
                    "remote_addr": client[0] if client else None,
                },
            )
