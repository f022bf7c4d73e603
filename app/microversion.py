"""Microversions: the named features of each version, and header parsing.

The table below is the API's changelog: one line per feature, named by what
it changes, at the version that introduced it. Routers, schemas, renderers and
the OpenAPI generator compare the request's version with these names
(``if version >= ALLOCATIONS_DICT_FORM``); nothing else spells a version
number. A new microversion is a new line here, ``MAX_VERSION`` moved to it,
and the code that reads the new name.
"""

import microversion_parse

SERVICE_TYPE = "placement"

Version = tuple[int, int]

# ---------------------------------------------------------------- the changelog
BASE: Version = (1, 0)  # providers, inventories, usages, allocations
AGGREGATES: Version = (1, 1)  # provider aggregates; aggregates link on providers
RESOURCE_CLASSES: Version = (1, 2)  # /resource_classes
PROVIDER_MEMBER_OF: Version = (1, 3)  # member_of on GET /resource_providers
PROVIDER_RESOURCES_FILTER: Version = (1, 4)  # resources on GET /resource_providers
DELETE_ALL_INVENTORIES: Version = (1, 5)  # DELETE .../inventories
TRAITS: Version = (1, 6)  # /traits, provider traits; traits link on providers
RESOURCE_CLASS_PUT_CREATES: Version = (1, 7)  # PUT /resource_classes/{name}: create-or-verify
ALLOCATION_OWNER_REQUIRED: Version = (1, 8)  # project_id and user_id in allocation writes
PROJECT_USAGES: Version = (1, 9)  # GET /usages
ALLOCATION_CANDIDATES: Version = (1, 10)  # GET /allocation_candidates
ALLOCATIONS_LINK: Version = (1, 11)  # allocations link on providers
ALLOCATIONS_DICT_FORM: Version = (1, 12)  # allocations keyed by provider (reads, writes)
POST_ALLOCATIONS: Version = (1, 13)  # POST /allocations
NESTED_PROVIDERS: Version = (1, 14)  # parent and root providers, in_tree
CACHE_HEADERS: Version = (1, 15)  # Last-Modified and Cache-Control
CANDIDATES_LIMIT: Version = (1, 16)  # limit on allocation candidates
CANDIDATES_REQUIRED_TRAITS: Version = (1, 17)  # required on candidates; traits in summaries
PROVIDER_REQUIRED_TRAITS: Version = (1, 18)  # required on GET /resource_providers
AGGREGATES_GENERATION: Version = (1, 19)  # provider generation in aggregate bodies
CREATE_PROVIDER_RETURNS_BODY: Version = (1, 20)  # POST /resource_providers answers the provider
CANDIDATES_MEMBER_OF: Version = (1, 21)  # member_of on allocation candidates
FORBIDDEN_TRAITS: Version = (1, 22)  # !TRAIT in required
ERROR_CODES: Version = (1, 23)  # code in error bodies
MULTIPLE_MEMBER_OF: Version = (1, 24)  # repeated member_of
GRANULAR_GROUPS: Version = (1, 25)  # numbered request groups, group_policy
RESERVED_MAY_EQUAL_TOTAL: Version = (1, 26)  # reserved == total is valid inventory
ALL_CLASSES_IN_SUMMARIES: Version = (1, 27)  # every class of a provider in summaries
CONSUMER_GENERATIONS: Version = (1, 28)  # consumer_generation in allocation reads and writes
NESTED_CANDIDATES: Version = (1, 29)  # candidates spread over provider trees
RESHAPER: Version = (1, 30)  # POST /reshaper
CANDIDATES_IN_TREE: Version = (1, 31)  # in_tree on allocation candidates
FORBIDDEN_AGGREGATES: Version = (1, 32)  # !in: in member_of
LONG_GROUP_SUFFIXES: Version = (1, 33)  # any-string request group suffixes
CANDIDATE_MAPPINGS: Version = (1, 34)  # mappings in allocation requests and writes
ROOT_REQUIRED: Version = (1, 35)  # root_required on allocation candidates
SAME_SUBTREE: Version = (1, 36)  # same_subtree, resource-less request groups
REPARENT_PROVIDERS: Version = (1, 37)  # re-parenting and un-parenting providers
CONSUMER_TYPES: Version = (1, 38)  # consumer_type in allocations and usages
ANY_TRAITS: Version = (1, 39)  # in: any-of traits, repeated required
# ------------------------------------------------------------------------------

MIN_VERSION: Version = BASE
MAX_VERSION: Version = ANY_TRAITS


def format_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


VERSIONS: list[str] = [format_version((1, minor)) for minor in range(MAX_VERSION[1] + 1)]
MIN_VERSION_STRING = format_version(MIN_VERSION)
MAX_VERSION_STRING = format_version(MAX_VERSION)


def before(version: Version) -> Version:
    """The last version without a feature (the end of a route's range)."""
    return (version[0], version[1] - 1)


def parse_version(text: str) -> Version:
    """``"1.20"`` -> ``(1, 20)``."""
    major, minor = (int(part) for part in text.split("."))
    return (major, minor)


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
        # The library's own text, as the reference passes it on (it names the cause).
        raise InvalidVersion(str(exc)) from exc
    version = (parsed.major, parsed.minor)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise UnacceptableVersion(f"Unacceptable version header: {value}")
    return version
