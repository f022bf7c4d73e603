"""Microversions: the supported list, header parsing, and per-route gates.

Each entry of ``VERSIONS`` doubles as the changelog of the API.
"""

from collections.abc import Callable

import microversion_parse
from starlette.requests import Request

from app.errors import METHOD_NOT_ALLOWED, MethodNotAllowed, NotFound

SERVICE_TYPE = "placement"
HEADER = "openstack-api-version"

VERSIONS = [
    "1.0",  # providers, inventories, usages, allocations
    "1.1",  # provider aggregates
    "1.2",  # resource classes
    "1.3",  # member_of on GET /resource_providers
    "1.4",  # resources filter on GET /resource_providers
    "1.5",  # DELETE all inventories
    "1.6",  # traits
    "1.7",  # PUT /resource_classes/{name} is create-or-verify
    "1.8",  # project_id and user_id required in allocation writes
    "1.9",  # GET /usages
    "1.10",  # GET /allocation_candidates
    "1.11",  # allocations link on providers
    "1.12",  # dict form of allocations
    "1.13",  # POST /allocations
    "1.14",  # nested providers, in_tree
    "1.15",  # last-modified and cache-control
    "1.16",  # limit on allocation candidates
    "1.17",  # required traits on allocation candidates
    "1.18",  # required traits on GET /resource_providers
    "1.19",  # aggregates carry the provider generation
    "1.20",  # POST /resource_providers answers the provider
    "1.21",  # member_of on allocation candidates
    "1.22",  # forbidden traits
    "1.23",  # code in error bodies
    "1.24",  # repeated member_of
    "1.25",  # granular request groups
    "1.26",  # reserved may equal total
    "1.27",  # all classes in provider summaries
    "1.28",  # consumer generations
    "1.29",  # nested allocation candidates
    "1.30",  # POST /reshaper
    "1.31",  # in_tree on allocation candidates
    "1.32",  # forbidden aggregates
    "1.33",  # any-string request group suffixes
    "1.34",  # mappings in allocation requests
    "1.35",  # root_required
    "1.36",  # same_subtree, resource-less groups
    "1.37",  # re-parenting providers
    "1.38",  # consumer types
    "1.39",  # any-of traits (in:) and repeated required
]

Version = tuple[int, int]

MIN_VERSION: Version = (1, 0)
MAX_VERSION: Version = (1, 39)
MIN_VERSION_STRING = "1.0"
MAX_VERSION_STRING = "1.39"


class InvalidVersion(Exception):
    """The header's value is not a version string (answered 400)."""


class UnacceptableVersion(Exception):
    """A well-formed version this service does not support (answered 406)."""


def parse_header(headers: dict[str, str]) -> Version:
    """Return the negotiated version for request headers (lower-case keys)."""
    value = microversion_parse.get_version(headers, service_type=SERVICE_TYPE)
    if value is None:
        return MIN_VERSION
    if value == "latest":
        return MAX_VERSION
    try:
        parsed = microversion_parse.parse_version_string(value)
    except TypeError as exc:
        raise InvalidVersion(f"invalid version string: {value}") from exc
    version = (parsed.major, parsed.minor)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise UnacceptableVersion(f"Unacceptable version header: {value}")
    return version


def format_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def request_version(request: Request) -> Version:
    version: Version = request.state.version
    return version


def since(minimum: str, *, status: int = 404) -> Callable[[Request], None]:
    """A route dependency: below ``minimum`` the route answers 404 (or 405)."""
    major, minor = (int(part) for part in minimum.split("."))
    threshold = (major, minor)

    def gate(request: Request) -> None:
        if request_version(request) < threshold:
            if status == 405:
                raise MethodNotAllowed(
                    METHOD_NOT_ALLOWED,
                    headers={"allow": request.app.state.allowed_methods(request)}
                )
            raise NotFound()

    # Read by the OpenAPI generator to leave the route out of older documents.
    gate.minimum = threshold  # type: ignore[attr-defined]
    gate.below_status = status  # type: ignore[attr-defined]
    return gate
