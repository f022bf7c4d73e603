"""The query string of ``GET /allocation_candidates`` -> a ``CandidateRequest``.

Validation runs in the reference's order (spec §12.2, rows 1-9):

1. the version's query schema (unknown keys, ``limit`` pattern, ``group_policy``
   enum, ``resources`` required below 1.25), worded like the JSON Schema
   validator the reference uses;
2-5. request-wide parameters: ``root_required`` (once, well formed, not
   contradictory) and ``same_subtree`` (no empty suffix);
6. every group parameter in query-string order (``resources*``, ``required*``,
   ``member_of*``, ``in_tree*``) with the shared grammars of ``app.query``;
7. group consistency (resource-less groups and ``same_subtree`` from 1.36,
   orphaned keys before);
8. a required trait that the same group forbids;
9. ``group_policy`` missing with several suffixed groups.

Unknown resource classes and traits (rows 10-11) need the database and are
checked by ``app.services.candidates.search``.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from app import query
from app.exceptions import (
    GroupPolicyRequired,
    GroupTraitConflict,
    GroupWithoutResources,
    InvalidCandidatesQuery,
    NoRequestGroup,
    NoResourcesInAnyGroup,
    OrphanedMemberOfKeys,
    OrphanedTraitKeys,
    ResourcelessGroupOutsideSubtree,
    RootRequiredConflict,
    RootRequiredRepeated,
    SameSubtreeUnsuffixed,
    UnknownSameSubtreeSuffixes,
)
from app.microversion import (
    ANY_TRAITS,
    CANDIDATES_IN_TREE,
    CANDIDATES_LIMIT,
    CANDIDATES_MEMBER_OF,
    CANDIDATES_REQUIRED_TRAITS,
    FORBIDDEN_TRAITS,
    GRANULAR_GROUPS,
    LONG_GROUP_SUFFIXES,
    NESTED_CANDIDATES,
    ROOT_REQUIRED,
    SAME_SUBTREE,
    Version,
    before,
)
from app.records import MAX_INT

GROUP_POLICIES = ("none", "isolate")
NO_LIMIT_BEYOND = MAX_INT // 64
LIMIT_PATTERN = "^[1-9][0-9]*$"
_LIMIT_RE = re.compile(LIMIT_PATTERN)
_SUFFIX_NUMBERED = "[1-9][0-9]*"
_SUFFIX_ANY = "[a-zA-Z0-9_-]{1,64}"
_GROUP_PREFIXES = ("resources", "required", "member_of", "in_tree")

# ``root_required`` is parsed with the grammar ``required`` had just before
# any-of traits: ``!`` allowed, ``in:`` refused -- even at 1.39 (where the
# reference's message then claims that 1.39 is needed).
_ROOT_REQUIRED_GRAMMAR: Version = before(ANY_TRAITS)

# Any-of sets of one group (ANDed), e.g. [{"A"}, {"B", "C"}] = A and (B or C).
TraitSets = list[frozenset[str]]


@dataclass
class RequestGroup:
    """One request group: ``suffix`` is ``""`` for the unsuffixed group."""

    suffix: str
    resources: dict[str, int] = field(default_factory=dict)
    required: TraitSets = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    member_of: list[frozenset[str]] = field(default_factory=list)
    forbidden_aggs: set[str] = field(default_factory=set)
    in_tree: str | None = None

    @property
    def same_provider(self) -> bool:
        """Suffixed groups must be satisfied by a single provider."""
        return self.suffix != ""

    @property
    def trait_names(self) -> list[str]:
        """Every trait the group names, in a stable order (for lookups)."""
        names: list[str] = []
        for any_of in self.required:
            names.extend(sorted(any_of))
        names.extend(sorted(self.forbidden))
        return names


@dataclass
class CandidateRequest:
    version: Version
    groups: list[RequestGroup]
    limit: int | None = None
    group_policy: str | None = None
    root_required: list[str] = field(default_factory=list)
    root_forbidden: list[str] = field(default_factory=list)
    same_subtrees: list[frozenset[str]] = field(default_factory=list)
    # An amount beyond any max_unit was asked for (and cut to bind): no candidate.
    unsatisfiable: bool = False

    @property
    def nested_aware(self) -> bool:
        return self.version >= NESTED_CANDIDATES

    @property
    def requested_classes(self) -> set[str]:
        return {name for group in self.groups for name in group.resources}


# -- the query schema (row 1) ---------------------------------------------------

def _group_pattern(prefix: str, version: Version) -> str:
    suffix = _SUFFIX_ANY if version >= LONG_GROUP_SUFFIXES else _SUFFIX_NUMBERED
    return f"^{prefix}({suffix})?$"


def query_schema(version: Version) -> dict[str, Any]:
    """The JSON schema the reference validates the query with (for messages)."""
    properties: dict[str, Any] = {}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    limit = {
        "type": ["integer", "string"],
        "pattern": LIMIT_PATTERN,
        "minimum": 1,
        "minLength": 1,
    }
    if version < GRANULAR_GROUPS:
        properties["resources"] = {"type": "string"}
        if version >= CANDIDATES_LIMIT:
            properties["limit"] = limit
        if version >= CANDIDATES_REQUIRED_TRAITS:
            properties["required"] = {"type": ["string"]}
        if version >= CANDIDATES_MEMBER_OF:
            properties["member_of"] = {"type": ["string"]}
        schema["required"] = ["resources"]
        schema["additionalProperties"] = False
        return schema
    properties["limit"] = limit
    properties["group_policy"] = {"type": "string", "enum": list(GROUP_POLICIES)}
    if version >= ROOT_REQUIRED:
        properties["root_required"] = {"type": ["string"]}
    if version >= SAME_SUBTREE:
        properties["same_subtree"] = {"type": ["string"]}
    schema["additionalProperties"] = False
    prefixes = _GROUP_PREFIXES if version >= CANDIDATES_IN_TREE else _GROUP_PREFIXES[:3]
    schema["patternProperties"] = {
        _group_pattern(prefix, version): {"type": "string"} for prefix in prefixes
    }
    return schema


def _schema_error(
    message: str, keyword: str, schema: object, instance: object, path: tuple[str, ...] = ()
) -> InvalidCandidatesQuery:
    return InvalidCandidatesQuery(
        details=query.schema_failure(message, keyword, schema, instance, path)
    )


def _check_schema(items: list[tuple[str, str]], version: Version) -> None:
    """Row 1: the first error the JSON Schema validator would report."""
    schema = query_schema(version)
    # The reference validates ``dict(GET)``: one entry per key, the last value.
    instance: dict[str, str] = {}
    for key, value in items:
        instance[key] = value  # first position, last value: like dict(MultiDict)
    properties: dict[str, Any] = schema["properties"]
    if "required" in schema and "resources" not in instance:
        raise _schema_error(
            "'resources' is a required property", "required", schema, instance
        )
    patterns = schema.get("patternProperties", {})
    compiled = [re.compile(pattern) for pattern in patterns]
    extras = sorted(
        key
        for key in instance
        if key not in properties and not any(regex.search(key) for regex in compiled)
    )
    if extras:
        names = ", ".join(repr(key) for key in extras)
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            regexes = ", ".join(repr(pattern) for pattern in sorted(patterns))
            message = f"{names} {verb} not match any of the regexes: {regexes}"
        else:
            verb = "was" if len(extras) == 1 else "were"
            message = f"Additional properties are not allowed ({names} {verb} unexpected)"
        raise _schema_error(message, "additionalProperties", schema, instance)
    for key, value in instance.items():
        if key == "limit" and not _LIMIT_RE.search(value):
            raise _schema_error(
                f"{value!r} does not match {LIMIT_PATTERN!r}",
                "pattern",
                properties["limit"],
                value,
                ("limit",),
            )
        if key == "group_policy" and value not in GROUP_POLICIES:
            raise _schema_error(
                f"{value!r} is not one of {list(GROUP_POLICIES)!r}",
                "enum",
                properties["group_policy"],
                value,
                ("group_policy",),
            )


# -- request-wide parameters (rows 2-5) --------------------------------------------

def _parse_root_required(
    values: list[str], request: CandidateRequest
) -> None:
    if not values:
        return
    if len(values) > 1:
        raise RootRequiredRepeated()
    traits = query.parse_required(values, _ROOT_REQUIRED_GRAMMAR)
    required: list[str] = []
    for any_of in traits.required:
        for name in any_of:
            if name not in required:
                required.append(name)
    forbidden: list[str] = []
    for item in (item.strip() for item in values[0].split(",")):
        name = item.lstrip("!")
        if item.startswith("!") and name not in forbidden:
            forbidden.append(name)
    conflicts = sorted(set(required) & set(forbidden))
    if conflicts:
        raise RootRequiredConflict(traits=", ".join(conflicts))
    request.root_required = required
    request.root_forbidden = forbidden


def _parse_same_subtree(values: list[str]) -> list[frozenset[str]]:
    result = []
    for value in values:
        suffixes = frozenset(item.strip() for item in value.split(","))
        if "" in suffixes:
            raise SameSubtreeUnsuffixed()
        result.append(suffixes)
    return result


# -- request groups (rows 6-9) --------------------------------------------------

def _parse_groups(
    items: list[tuple[str, str]], values: dict[str, list[str]], request: CandidateRequest,
    limits: query.QueryLimits,
) -> dict[str, RequestGroup]:
    version = request.version
    suffix_pattern = _SUFFIX_ANY if version >= LONG_GROUP_SUFFIXES else _SUFFIX_NUMBERED
    key_re = re.compile(f"^({'|'.join(_GROUP_PREFIXES)})({suffix_pattern})?$")
    groups: dict[str, RequestGroup] = {}
    parsed: set[str] = set()
    for key, value in items:
        match = key_re.match(key)
        if match is None:
            continue
        prefix, suffix = match.group(1), match.group(2) or ""
        if suffix not in groups:
            limits.check_groups(len(groups) + 1)
        group = groups.setdefault(suffix, RequestGroup(suffix))
        if prefix == "resources":
            group.resources, cut = query.bind_amounts(query.parse_resources(value))
            request.unsatisfiable |= cut
            continue
        if prefix == "in_tree":
            group.in_tree = query.parse_in_tree(value)
            continue
        # A repeated key is read whole at its first occurrence, and only then.
        if key in parsed:
            continue
        parsed.add(key)
        if prefix == "required":
            traits = query.parse_required(values[key], version, key, limits)
            group.required, group.forbidden = list(traits.required), set(traits.forbidden)
        else:
            aggs = query.parse_member_of(values[key], version, key, limits)
            group.member_of, group.forbidden_aggs = list(aggs.required), set(aggs.forbidden)
    return groups


def _check_resourceless(
    groups: dict[str, RequestGroup], same_subtrees: list[frozenset[str]]
) -> None:
    """Rows 7a-7c (1.36+)."""
    resourceless = [suffix for suffix, group in groups.items() if not group.resources]
    if len(resourceless) == len(groups):
        raise NoResourcesInAnyGroup()
    in_subtrees: set[str] = set().union(*same_subtrees)
    bad = [suffix for suffix in resourceless if suffix not in in_subtrees]
    if bad:
        raise ResourcelessGroupOutsideSubtree(suffixes=bad)
    ordered: list[str] = []
    for suffixes in same_subtrees:
        ordered.extend(sorted(suffixes - set(ordered)))
    unknown = [suffix for suffix in ordered if suffix not in groups]
    if unknown:
        raise UnknownSameSubtreeSuffixes(unknown=unknown, known=list(groups))


def _check_orphans(groups: dict[str, RequestGroup]) -> None:
    """Rows 7d-7g (1.25-1.35)."""
    orphans = [
        f"required{suffix}"
        for suffix, group in groups.items()
        if group.required and not group.resources
    ]
    if orphans:
        raise OrphanedTraitKeys(keys=", ".join(orphans))
    orphans = [
        f"member_of{suffix}"
        for suffix, group in groups.items()
        if not group.resources and (group.member_of or group.forbidden_aggs)
    ]
    if orphans:
        raise OrphanedMemberOfKeys(keys=", ".join(orphans))
    if not all(group.resources for group in groups.values()):
        raise GroupWithoutResources()
    if not groups:
        raise NoRequestGroup()


def _check_conflicts(groups: dict[str, RequestGroup]) -> None:
    """Row 8: an any-of set whose every member the same group forbids."""
    conflicts = [
        f"required{suffix}: ({', '.join(sorted(any_of))})"
        for suffix, group in groups.items()
        for any_of in group.required
        if any_of <= group.forbidden
    ]
    if conflicts:
        raise GroupTraitConflict(keys=", ".join(sorted(conflicts)))


def parse_request(
    items: list[tuple[str, str]], version: Version,
    limits: query.QueryLimits = query.DEFAULT_LIMITS,
) -> CandidateRequest:
    """Validate the query (``(key, value)`` pairs in order) at ``version``."""
    values = query.group_values(items, limits)
    _check_schema(items, version)
    request = CandidateRequest(version=version, groups=[])
    sizes = values.get("limit", [])
    if sizes:
        if not _LIMIT_RE.search(sizes[0]):
            raise _schema_error(
                f"{sizes[0]!r} does not match {LIMIT_PATTERN!r}",
                "pattern",
                query_schema(version)["properties"]["limit"],
                sizes[0],
                ("limit",),
            )
        # A limit no answer can reach means "all": no limit (the search binds
        # multiples of the limit into int32 statements).
        size = int(sizes[0])
        request.limit = size if size <= NO_LIMIT_BEYOND else None
    policies = values.get("group_policy", [])
    if policies:
        request.group_policy = policies[0]
    _parse_root_required(values.get("root_required", []), request)
    request.same_subtrees = _parse_same_subtree(values.get("same_subtree", []))
    groups = _parse_groups(items, values, request, limits)
    if version >= SAME_SUBTREE:
        _check_resourceless(groups, request.same_subtrees)
    else:
        _check_orphans(groups)
    if version >= FORBIDDEN_TRAITS:
        _check_conflicts(groups)
    if request.group_policy is None and sum(g.same_provider for g in groups.values()) > 1:
        raise GroupPolicyRequired()
    request.groups = list(groups.values())
    return request
