"""The query parameters routes declare, as the OpenAPI documents describe them.

Handlers parse their queries themselves (``app.query``, the services); these
declarations say what each parameter accepts and from which microversion.
Numbered and named request groups (``resources1``, ``required_ACCEL``, ...)
cannot be listed one by one: the unsuffixed parameters describe them.
"""

from app.api.routing import QueryParam
from app.microversion import (
    ALLOCATION_CANDIDATES,
    ANY_TRAITS,
    CANDIDATES_IN_TREE,
    CANDIDATES_LIMIT,
    CANDIDATES_MEMBER_OF,
    CANDIDATES_REQUIRED_TRAITS,
    CONSUMER_TYPES,
    FORBIDDEN_AGGREGATES,
    FORBIDDEN_TRAITS,
    GRANULAR_GROUPS,
    LONG_GROUP_SUFFIXES,
    MULTIPLE_MEMBER_OF,
    NESTED_PROVIDERS,
    PROJECT_USAGES,
    PROVIDER_MEMBER_OF,
    PROVIDER_REQUIRED_TRAITS,
    PROVIDER_RESOURCES_FILTER,
    ROOT_REQUIRED,
    SAME_SUBTREE,
    TRAITS,
    format_version,
)

_GROUPS = (
    f" From {format_version(GRANULAR_GROUPS)} the same parameter with a suffix "
    "(`{name}1`, `{name}2`, ...) belongs to that numbered request group, which one "
    f"provider satisfies; from {format_version(LONG_GROUP_SUFFIXES)} the suffix may be "
    "any 1-64 characters of `a-z`, `A-Z`, `0-9`, `_` and `-` (`{name}_ACCEL`)."
)

MEMBER_OF = (
    "Providers in an aggregate: `member_of=AGG_UUID`, or in any of several: "
    "`member_of=in:AGG1,AGG2`. "
    f"From {format_version(MULTIPLE_MEMBER_OF)} it may be repeated (every value must "
    f"hold); from {format_version(FORBIDDEN_AGGREGATES)} `!AGG_UUID` and `!in:AGG1,AGG2` "
    "exclude aggregates."
)
REQUIRED = (
    "Comma-separated trait names the providers must have: `required=HW_CPU_X86_AVX,"
    f"CUSTOM_FAST`. From {format_version(FORBIDDEN_TRAITS)} `!TRAIT` forbids a trait; "
    f"from {format_version(ANY_TRAITS)} `required=in:T1,T2` asks for any of several, "
    "and the parameter may be repeated (every value must hold)."
)
RESOURCES = (
    "Comma-separated `CLASS:AMOUNT` pairs the providers must have capacity for: "
    "`resources=VCPU:4,MEMORY_MB:2048` (amounts are positive integers)."
)
IN_TREE = "A provider UUID: only providers in that provider's tree."


def provider_list() -> tuple[QueryParam, ...]:
    """``GET /resource_providers``."""
    return (
        QueryParam("name", "Providers with exactly this name."),
        QueryParam("uuid", "The provider with this UUID."),
        QueryParam("member_of", MEMBER_OF, since=PROVIDER_MEMBER_OF,
                   repeated_since=MULTIPLE_MEMBER_OF),
        QueryParam("resources", RESOURCES, since=PROVIDER_RESOURCES_FILTER),
        QueryParam("in_tree", IN_TREE, since=NESTED_PROVIDERS),
        QueryParam("required", REQUIRED, since=PROVIDER_REQUIRED_TRAITS,
                   repeated_since=ANY_TRAITS),
    )


def allocation_candidates() -> tuple[QueryParam, ...]:
    """``GET /allocation_candidates``."""
    return (
        QueryParam("resources", RESOURCES + _GROUPS.format(name="resources"),
                   since=ALLOCATION_CANDIDATES),
        QueryParam("limit", "At most this many allocation requests (a positive integer).",
                   since=CANDIDATES_LIMIT, kind="integer"),
        QueryParam("required", REQUIRED + _GROUPS.format(name="required"),
                   since=CANDIDATES_REQUIRED_TRAITS, repeated_since=ANY_TRAITS),
        QueryParam("member_of", MEMBER_OF + _GROUPS.format(name="member_of"),
                   since=CANDIDATES_MEMBER_OF, repeated_since=MULTIPLE_MEMBER_OF),
        QueryParam("group_policy",
                   "`none` or `isolate`: whether different suffixed request groups may "
                   "be satisfied by one provider; required with more than one group.",
                   since=GRANULAR_GROUPS),
        QueryParam("in_tree", IN_TREE + _GROUPS.format(name="in_tree"),
                   since=CANDIDATES_IN_TREE),
        QueryParam("root_required",
                   "Comma-separated traits the root provider of each tree must have "
                   "(`TRAIT`) or not have (`!TRAIT`).", since=ROOT_REQUIRED),
        QueryParam("same_subtree",
                   "Comma-separated request group suffixes whose providers must share a "
                   "subtree; may be repeated.", since=SAME_SUBTREE,
                   repeated_since=SAME_SUBTREE),
    )


def usages() -> tuple[QueryParam, ...]:
    """``GET /usages``."""
    return (
        QueryParam("project_id", "The project whose usages are totalled.",
                   since=PROJECT_USAGES, required=True),
        QueryParam("user_id", "Only this user's usages.", since=PROJECT_USAGES),
        QueryParam("consumer_type",
                   "Group the totals by consumer type: a type (`INSTANCE`), `all` or "
                   "`unknown`.", since=CONSUMER_TYPES),
    )


def traits() -> tuple[QueryParam, ...]:
    """``GET /traits``."""
    return (
        QueryParam("name",
                   "`startswith:PREFIX` or `in:T1,T2`: traits by name.", since=TRAITS),
        QueryParam("associated",
                   "`true`: only traits some provider has; `false`: only those none has.",
                   since=TRAITS),
    )
