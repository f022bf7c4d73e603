"""The reference's error body, and the exceptions handlers raise to produce it.

Every error leaves the service as
``{"errors": [{"status", "title", "detail", "code", "request_id"}]}``; ``code``
only from microversion 1.23. ``detail`` is built the way the reference's web
framework builds it, because clients match on parts of it.
"""

import html
from http import HTTPStatus

import orjson
from starlette.responses import Response

from app.negotiation import error_media_type

UNDEFINED_CODE = "placement.undefined_code"
CONCURRENT_UPDATE = "placement.concurrent_update"
DUPLICATE_NAME = "placement.duplicate_name"
INVENTORY_INUSE = "placement.inventory.inuse"
PROVIDER_INUSE = "placement.resource_provider.inuse"
PROVIDER_CANNOT_DELETE_PARENT = "placement.resource_provider.cannot_delete_parent"
PROVIDER_NOT_FOUND = "placement.resource_provider.not_found"
QUERY_DUPLICATE_KEY = "placement.query.duplicate_key"
QUERY_BAD_VALUE = "placement.query.bad_value"
QUERY_MISSING_VALUE = "placement.query.missing_value"

CODE_MIN_VERSION = (1, 23)
METHOD_NOT_ALLOWED = "The method specified is not allowed for this resource."

_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed "
    "or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document "
    "you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    409: "There was a conflict when trying to complete your request.",
    500: "The server has either erred or is incapable of performing the requested "
    "operation.",
    503: "The server is currently unavailable. Please try again at a later time.",
}


class PlacementError(Exception):
    """An error answered with the reference's JSON error body."""

    status = 500

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.headers = headers or {}
        if status is not None:
            self.status = status


class BadRequest(PlacementError):
    status = 400


class Forbidden(PlacementError):
    status = 403


class NotFound(PlacementError):
    status = 404


class MethodNotAllowed(PlacementError):
    status = 405


class NotAcceptable(PlacementError):
    status = 406


class Conflict(PlacementError):
    status = 409


class UnsupportedMediaType(PlacementError):
    status = 415


def build_detail(
    status: int,
    message: str,
    *,
    method: str = "",
    accept: str | None = None,
    content_type: str | None = None,
) -> str:
    if status == 405:
        return f"The method {method} is not allowed for this resource. \n\n {message}"
    if status == 406:
        return (
            "The resource could not be generated that was acceptable to your browser "
            f"(content of type {accept}. \n\n {message}"
        )
    if status == 415:
        return (
            f"The request media type {content_type} is not supported by this server. "
            f"\n\n {message}"
        )
    explanation = _EXPLANATIONS.get(status, "")
    return f"{explanation}\n\n {message}  "


def error_body(
    status: int,
    message: str,
    *,
    request_id: str,
    version: tuple[int, int] | None,
    code: str | None = None,
    method: str = "",
    accept: str | None = None,
    content_type: str | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    error: dict[str, object] = {
        "status": status,
        "title": HTTPStatus(status).phrase,
        "detail": build_detail(
            status, message, method=method, accept=accept, content_type=content_type
        ),
    }
    if version is not None and version >= CODE_MIN_VERSION:
        error["code"] = code or UNDEFINED_CODE
    error["request_id"] = request_id
    if extra:
        error.update(extra)
    return orjson.dumps({"errors": [error]})


def error_response(
    status: int,
    message: str,
    *,
    request_id: str,
    version: tuple[int, int] | None,
    code: str | None = None,
    method: str = "",
    accept: str | None = None,
    content_type: str | None = None,
    extra: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    media_type = error_media_type(accept)
    if media_type != "application/json":
        detail = build_detail(
            status, message, method=method, accept=accept, content_type=content_type
        )
        title = f"{status} {HTTPStatus(status).phrase}"
        text = (
            f"<html>\n <head>\n  <title>{html.escape(title)}</title>\n </head>\n <body>\n"
            f"  <h1>{html.escape(title)}</h1>\n  {html.escape(detail)}<br /><br />\n\n\n\n"
            " </body>\n</html>"
            if media_type == "text/html"
            else f"{title}\n\n{detail}\n\n"
        )
        return Response(text, status_code=status, media_type=media_type, headers=headers)
    body = error_body(
        status,
        message,
        request_id=request_id,
        version=version,
        code=code,
        method=method,
        accept=accept,
        content_type=content_type,
        extra=extra,
    )
    return Response(body, status_code=status, media_type="application/json", headers=headers)
