"""The structured access log: one record per request (logger ``app.access``)."""

import logging
from typing import Any

from starlette.types import Scope

ACCESS_LOG = logging.getLogger("app.access")


def log_request(
    scope: Scope, route: str, status: int, duration: float, microversion: str | None
) -> None:
    if not ACCESS_LOG.isEnabledFor(logging.INFO):
        return
    state: dict[str, Any] = scope.get("state") or {}
    method: str = scope["method"]
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
            "microversion": microversion,
            "user_id": getattr(context, "user_id", None),
            "project_id": getattr(context, "project_id", None),
            "remote_addr": client[0] if client else None,
        },
    )
