"""The request pipeline in front of routing, as one pure-ASGI middleware.

Order as in the reference: request id, authentication, microversion, body
sanity; then routing. Every response gets the request id, and every response
produced after a version was established gets the microversion headers.
"""

import uuid
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import microversion
from app.api.errors import error_response
from app.api.http import route_path
from app.auth import IdentityUnavailable, RequestContext, Unauthenticated, noauth2_context

REQUEST_ID_HEADER = b"x-openstack-request-id"
# Paths that need neither a token nor a policy: version discovery, health.
PUBLIC_PATHS = frozenset({"", "/", "/healthcheck"})
# Public too when the setting says so (Settings.docs_and_metrics_public).
DOCS_AND_METRICS = frozenset({"/docs", "/redoc", "/openapi.json", "/metrics"})
# keystonemiddleware's answer when Keystone cannot be asked (what the reference sends).
UNAVAILABLE_BODY = (
    b'{"message": "The server is currently unavailable. Please try again at a later '
    b'time.<br /><br />\\nThe Keystone service is temporarily unavailable.\\n\\n", '
    b'"code": "503 Service Unavailable", "title": "Service Unavailable"}'
)


class Authenticator(Protocol):
    async def authenticate(self, headers: dict[str, str], request_id: str) -> RequestContext:
        ...

    async def aclose(self) -> None:
        """Release what it holds (connections to Keystone) at shutdown."""


class NoAuth2:
    async def authenticate(self, headers: dict[str, str], request_id: str) -> RequestContext:
        return noauth2_context(headers, request_id)

    async def aclose(self) -> None:
        return None


class PlacementMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        strip_identity: bool = False,
        public_docs_and_metrics: bool = True,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.strip_identity = strip_identity
        self.public_docs_and_metrics = public_docs_and_metrics

    def _is_public(self, path: str) -> bool:
        if path in PUBLIC_PATHS:
            return True
        return self.public_docs_and_metrics and (
            path in DOCS_AND_METRICS or path.startswith("/openapi/")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        if self.strip_identity:
            # Nothing a client says about its identity reaches the app.
            from app.auth.keystone import strip_identity_headers  # keystone only: httpx
            scope["headers"] = strip_identity_headers(scope["headers"])
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

        if not self._is_public(route_path(scope)):
            try:
                state["context"] = await self.authenticator.authenticate(headers, request_id)
            except Unauthenticated as exc:
                await _send_plain(send_with_id, 401, exc.body, exc.headers)
                return
            except IdentityUnavailable:
                await _send_plain(send_with_id, 503, UNAVAILABLE_BODY)
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


async def _send_plain(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})
