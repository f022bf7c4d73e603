"""The categories of domain errors, the error codes, and the shared entries.

Services and repositories raise these; they know nothing of HTTP. One place,
:mod:`app.api.errors`, maps each category to a status and the placement error
body. Clients parse many of these texts (nova, neutron-lib, osc-placement
match on ``detail`` and ``code``), so every ``msg_fmt`` is kept to the letter.

An entry names its category by subclassing one of :class:`InvalidInput`,
:class:`Forbidden`, :class:`NotFound`, :class:`MethodNotAllowed`,
:class:`NotAcceptable`, :class:`Conflict`, :class:`UnsupportedMediaType` or
:class:`Unavailable`, and formats ``msg_fmt`` (``str.format`` fields) from
its keyword arguments. A category can also be raised with a finished message.
"""

from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

# Error codes (``code`` in the body from microversion 1.23).
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


class PlacementError(Exception):
    """Base of every domain error."""

    msg_fmt: ClassVar[str] = ""
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        if message is None:
            message = self.msg_fmt.format(**fields) if fields or self.msg_fmt else ""
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.headers = headers or {}


def judged(value: T | PlacementError) -> T:
    """A request part judged before a lookup that must answer first: the error
    judging it raised is raised now, after the lookup (404 before 400)."""
    if isinstance(value, PlacementError):
        raise value
    return value


# ------------------------------------------------------------------ categories


class InvalidInput(PlacementError):
    """The request is malformed or names something that cannot be used."""


class Forbidden(PlacementError):
    """Policy does not allow the operation."""


class NotFound(PlacementError):
    """The named resource does not exist."""


class MethodNotAllowed(PlacementError):
    """The resource exists but not this method (at this microversion)."""

    msg_fmt = "The method specified is not allowed for this resource."


class NotAcceptable(PlacementError):
    """The client cannot take what the service answers."""


class Conflict(PlacementError):
    """The operation collides with the current state (generations, use)."""


class UnsupportedMediaType(PlacementError):
    """The request body is not declared as JSON."""


class Unavailable(PlacementError):
    """A dependency of the service cannot answer now."""


class Unexpected(PlacementError):
    """A failure nothing else describes (answered 500, details only in the log)."""

    msg_fmt = "An unexpected error occurred."


# --------------------------------------------------------------- shared entries


class ConcurrentUpdate(Conflict):
    """A serialization failure outlived its retries."""

    msg_fmt = "Another thread concurrently updated the data. Please retry your update"
    default_code = CONCURRENT_UPDATE


class ProviderGenerationConflict(Conflict):
    """The generation the client sent is not the provider's current one."""

    msg_fmt = (
        "Resource provider's generation already changed. Please update the generation "
        "and try again."
    )
    default_code = CONCURRENT_UPDATE


class ResourceProviderNotFound(NotFound):
    """The wording every "provider by uuid" lookup shares."""

    msg_fmt = "No resource provider with uuid {uuid} found"


PROVIDER_RACED = (
    "Another thread concurrently updated the resource provider data. Please retry your update"
)


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached (a connection lost, a cluster node not ready,
    a bound on waiting exceeded); answered with ``Retry-After``."""

    msg_fmt = "The database is unavailable now; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(message, headers={"retry-after": str(retry_after)})
