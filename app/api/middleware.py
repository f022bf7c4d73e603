"""The request pipeline in front of routing, as one pure-ASGI middleware.

Order as in the reference: request id, authentication, microversion, body
sanity; then routing. Every response gets the request id, and every response
produced after a version was established gets the microversion headers.
"""

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import microversion
from app.api.errors import error_response
from app.api.http import route_path
from app.auth import (
    UNAUTHORIZED_BODY,
    Unauthenticated,
    context_from_identity_headers,
    noauth2_context,
)

REQUEST_ID_HEADER = b"x-openstack-request-id"
# Paths that need neither a token nor a policy: version discovery and the docs.
PUBLIC_PATHS = frozenset({"", "/", "/docs", "/openapi.json", "/healthcheck", "/metrics"})


class PlacementMiddleware:
    def __init__(self, app: ASGIApp, *, auth_strategy: str) -> None:
        self.app = app
        self.auth_strategy = auth_strategy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        headers = {key.decode("latin-1").lower(): value.decode("latin-1")
                   for key, value in scope["headers"]}
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["version"] = None
        state["context"] = None
        id_header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        path = route_path(scope)
        if path not in PUBLIC_PATHS and not path.startswith("/openapi/"):
            try:
                if self.auth_strategy == "noauth2":
                    state["context"] = noauth2_context(headers, request_id)
                else:
                    state["context"] = context_from_identity_headers(headers, request_id)
            except Unauthenticated:
                await send_with_id({
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(UNAUTHORIZED_BODY)).encode())],
                })
                await send_with_id({"type": "http.response.body", "body": UNAUTHORIZED_BODY})
                return

        try:
            version = microversion.parse_header(headers)
        except microversion.InvalidVersion as exc:
            response = error_response(
                400, f"Invalid microversion: {exc}", request_id=request_id, version=None
            )
            await response(scope, receive, send_with_id)
            return
        except microversion.UnacceptableVersion as exc:
            response = error_response(
                406,
                f"Invalid microversion: {exc}",
                request_id=request_id,
                version=None,
                accept=headers.get("accept"),
                extra={"max_version": microversion.MAX_VERSION_STRING,
                       "min_version": microversion.MIN_VERSION_STRING},
            )
            await response(scope, receive, send_with_id)
            return
        state["version"] = version
        version_header = (b"openstack-api-version",
                          f"placement {microversion.format_version(version)}".encode())

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [version_header]
                existing = [key.lower() for key, _ in message.get("headers", [])]
                if b"vary" not in existing:
                    extra.append((b"vary", b"openstack-api-version"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send_with_id(message)

        length = headers.get("content-length")
        if length is not None:
            try:
                has_body = int(length) > 0
            except ValueError:
                response = error_response(
                    400, "content-length header must be an integer",
                    request_id=request_id, version=version,
                )
                await response(scope, receive, send_with_version)
                return
            if has_body and not headers.get("content-type"):
                response = error_response(
                    400, "content-type header required when content-length > 0",
                    request_id=request_id, version=version,
                )
                await response(scope, receive, send_with_version)
                return

        await self.app(scope, receive, send_with_version)
