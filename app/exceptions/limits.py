"""Requests refused because they exceed a configured bound (issue 12).

The reference has no such bounds, so these texts are the service's own; each
names the setting that raises the bound.
"""

from app.exceptions.base import InvalidInput, PlacementError, Unavailable


class RequestTooLarge(PlacementError):
    """413: the body is longer than ``Settings.max_body_bytes``."""

    msg_fmt = "The request body is larger than the limit of {limit} bytes (max_body_bytes)."


class URITooLong(PlacementError):
    """414: path and query longer than ``Settings.max_url_length``."""

    msg_fmt = "The request URL is longer than the limit of {limit} bytes (max_url_length)."


class QueryLimitExceeded(InvalidInput):
    """400: a query asks for more than a configured bound allows."""

    msg_fmt = "Invalid query string parameters: {what} exceeds the limit of {limit} ({setting})."


class UnstorableCharacter(InvalidInput):
    """400: a NUL (or other character the databases cannot store) in the request."""

    msg_fmt = "Invalid input: {where} contains a character that cannot be stored (NUL)."


class Overloaded(Unavailable):
    """503: too many expensive requests in flight and queued on this worker."""

    msg_fmt = "Too many allocation candidate requests are in progress; retry later."
