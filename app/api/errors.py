"""Domain errors as HTTP: the status of each category and the reference's body.

Every error leaves the service as
``{"errors": [{"status", "title", "detail", "code", "request_id"}]}``; ``code``
only from microversion 1.23. ``detail`` is built the way the reference's web
framework builds it, because clients match on parts of it. This is the one
place that knows which status a domain error (:mod:`app.exceptions`) gets.
"""

import html
import re
from http import HTTPStatus

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app import exceptions
from app.api.negotiation import error_media_type
from app.exceptions.limits import RequestTooLarge, URITooLong
from app.microversion import ERROR_CODES

_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed "
    "or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document "
    "you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    409: "There was a conflict when trying to complete your request.",
    413: "The body of your request was too large for this server.",
    414: "The request URI was too long for this server.",
    500: "The server has either erred or is incapable of performing the requested "
    "operation.",
    503: "The server is currently unavailable. Please try again at a later time.",
}



# Status of each category; the first class in an error's MRO found here wins.
STATUS_BY_CATEGORY: dict[type[exceptions.PlacementError], int] = {
    exceptions.InvalidInput: 400,
    exceptions.Forbidden: 403,
    exceptions.NotFound: 404,
    exceptions.MethodNotAllowed: 405,
    exceptions.NotAcceptable: 406,
    exceptions.Conflict: 409,
    exceptions.UnsupportedMediaType: 415,
    RequestTooLarge: 413,
    URITooLong: 414,
    exceptions.Unavailable: 503,
    exceptions.Unexpected: 500,
}


def status_of(error: exceptions.PlacementError) -> int:
    for cls in type(error).__mro__:
        status = STATUS_BY_CATEGORY.get(cls)
        if status is not None:
            return status
    return 500


# Validation messages echo the input; a large body must not make a larger
# answer. The reference's longest messages (schema dumps) stay well inside.
MAX_MESSAGE = 16 * 1024
TRUNCATED = " ... (truncated)"
_BREAK = re.compile(r"<br.*?>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--|-->")
_TAG = re.compile(r"<.*?>", re.DOTALL)


def plain_message(message: str) -> str:
    """The message as the reference's web framework puts it in ``detail``.

    Its plain-text rendering turns newlines into spaces, drops carriage
    returns, makes ``<br>`` a newline and removes anything tag-like; so a
    multi-line validation message arrives on one line (clients such as the
    ``openstack`` CLI show the last line of ``detail``).
    """
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + TRUNCATED
    text = message.replace("\n", " ").replace("\r", "")
    text = _BREAK.sub("\n", text)
    return _TAG.sub("", _COMMENT.sub("", text))


def build_detail(
    status: int,
    message: str,
    *,
    method: str = "",
    accept: str | None = None,
    content_type: str | None = None,
) -> str:
    message = plain_message(message)
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
    if version is not None and version >= ERROR_CODES:
        error["code"] = code or exceptions.UNDEFINED_CODE
    error["request_id"] = request_id
    if extra:
        error.update(extra)
    return orjson.dumps({"errors": [error]})


def _html_page(status: int, title: str, message: str, accept: str | None) -> str:
    """The reference's HTML error page (clients that prefer HTML get it)."""
    explanation = (
        "The resource could not be generated that was acceptable to your browser\n"
        f"(content of type {accept}. "
        if status == 406 else _EXPLANATIONS.get(status, "")
    )
    return (
        f"<html>\n <head>\n  <title>{html.escape(title)}</title>\n </head>\n <body>\n"
        f"  <h1>{html.escape(title)}</h1>\n  {html.escape(explanation)}<br /><br />\n"
        f"{html.escape(message)}\n </body>\n</html>"
    )


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
            _html_page(status, title, plain_message(message), accept)
            if media_type == "text/html"
            else f"{title}\n\n{detail}"
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


def render_error(request: Request, error: exceptions.PlacementError) -> Response:
    """The response for a domain error raised while handling ``request``."""
    state = request.state
    state.error_code = error.code  # read by the metrics (generation conflicts)
    return error_response(
        status_of(error),
        error.message,
        request_id=getattr(state, "request_id", ""),
        version=getattr(state, "version", None),
        code=error.code,
        method=request.method,
        accept=request.headers.get("accept"),
        content_type=request.headers.get("content-type"),
        headers=error.headers,
    )
