"""CORS configured the way the reference's middleware answers.

Starlette's middleware does the work; two answers differ in the reference and
are adjusted here: a pre-flight that is not allowed is an empty 200 without
CORS headers (not a 400), and an allowed one echoes the requested method and
headers as sent.
"""

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

ALLOWED_HEADERS = [
    "X-Auth-Token", "X-Openstack-Request-Id", "X-Identity-Status", "X-Roles",
    "X-Service-Catalog", "X-User-Id", "X-Tenant-Id", "OpenStack-API-Version",
]
EXPOSED_HEADERS = [
    "X-Auth-Token", "X-Openstack-Request-Id", "X-Subject-Token", "X-Service-Token",
    "OpenStack-API-Version",
]
ALLOWED_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH"]
MAX_AGE = 3600


class PlacementCORSMiddleware(CORSMiddleware):
    def __init__(self, app: ASGIApp, *, allowed_origins: list[str]) -> None:
        super().__init__(
            app,
            allow_origins=allowed_origins,
            allow_credentials=True,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=MAX_AGE,
        )
        self._allowed_header_names = {name.lower() for name in ALLOWED_HEADERS}

    def preflight_response(self, request_headers: Headers) -> Response:
        origin = request_headers["origin"]
        method = request_headers["access-control-request-method"]
        requested = request_headers.get("access-control-request-headers")
        names = [name.strip().lower() for name in (requested or "").split(",") if name.strip()]
        allowed = (
            self.is_allowed_origin(origin=origin)
            and method in ALLOWED_METHODS
            and all(name in self._allowed_header_names for name in names)
        )
        if not allowed:
            return Response(status_code=200)
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Max-Age": str(MAX_AGE),
            "Access-Control-Allow-Methods": method,
            "Vary": "Origin",
        }
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        return Response(status_code=200, headers=headers)
