"""Authentication: turn a request's headers into a :class:`RequestContext`."""

from app.auth.context import (
    UNAUTHORIZED_BODY,
    IdentityUnavailable,
    RequestContext,
    Unauthenticated,
    noauth2_context,
)

__all__ = [
    "UNAUTHORIZED_BODY",
    "IdentityUnavailable",
    "RequestContext",
    "Unauthenticated",
    "noauth2_context",
]
