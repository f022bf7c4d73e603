"""Parsing of the query values shared by provider listing and allocation candidates.

``resources``, ``required`` and ``member_of`` follow one grammar on both
endpoints (spec §4.2 and §12.1); every parser here takes the raw values in
query-string order and raises ``InvalidInput`` with the reference's texts.
"""

import pprint
import re
import textwrap
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.exceptions import InvalidInput
from app.exceptions.limits import QueryLimitExceeded, UnstorableCharacter
from app.microversion import (
    ANY_TRAITS,
    FORBIDDEN_AGGREGATES,
    FORBIDDEN_TRAITS,
    MULTIPLE_MEMBER_OF,
    Version,
)
from app.records import MAX_INT

INVALID_QUERY = "Invalid query string parameters: "


def bind_amounts(resources: dict[str, int]) -> tuple[dict[str, int], bool]:
    """Amounts that fit the int32 columns, and whether any had to be cut.

    No allocation exceeds ``max_unit`` (an int32), so a larger amount can never
    be satisfied: the caller answers "nothing found" (200 and empty, as the
    reference does) after the lookups that may answer 400 first.
    """
    cut = any(amount > MAX_INT for amount in resources.values())
    if not cut:
        return resources, False
    return {name: min(amount, MAX_INT) for name, amount in resources.items()}, True
_RESOURCES_FORM = (
    "Badly formed resources parameter. Expected resources query string parameter in "
    "form: ?resources=VCPU:2,MEMORY_MB:1024. Got: {got}."
)
_ANY_TRAITS_FORM = "in:HW_CPU_X86_VMX,CUSTOM_MAGIC"


# -- bounds ----------------------------------------------------------------

@dataclass(frozen=True)
class QueryLimits:
    """Bounds on what one query may ask for (``Settings``, README "Limits").

    The defaults sit well above what nova's scheduler sends (a handful of
    request groups, a few dozen traits, aggregates by the dozen) and keep
    the work of one request bounded.
    """

    max_param_repeats: int = 64
    max_request_groups: int = 32
    max_in_items: int = 128
    max_traits_per_group: int = 48

    def check_repeats(self, key: str, count: int) -> None:
        if count > self.max_param_repeats:
            raise QueryLimitExceeded(
                what=f"the number of {key!r} parameters ({count})",
                limit=self.max_param_repeats, setting="max_param_repeats",
            )

    def check_in_items(self, key: str, count: int) -> None:
        if count > self.max_in_items:
            raise QueryLimitExceeded(
                what=f"the number of items in one {key!r} value ({count})",
                limit=self.max_in_items, setting="max_in_items",
            )

    def check_groups(self, count: int) -> None:
        if count > self.max_request_groups:
            raise QueryLimitExceeded(
                what=f"the number of request groups ({count})",
                limit=self.max_request_groups, setting="max_request_groups",
            )

    def check_traits(self, key: str, count: int) -> None:
        if count > self.max_traits_per_group:
            raise QueryLimitExceeded(
                what=f"the number of distinct trait conditions of {key!r} ({count})",
                limit=self.max_traits_per_group, setting="max_traits_per_group",
            )


DEFAULT_LIMITS = QueryLimits()


def check_storable(where: str, value: str) -> None:
    """400 for a NUL: PostgreSQL cannot store or compare it (MySQL truncates)."""
    if "\x00" in value:
        raise UnstorableCharacter(where=where)


def group_values(items: Iterable[tuple[str, str]], limits: QueryLimits) -> dict[str, list[str]]:
    """Every value of every key, in order, read once (keys repeated within bounds)."""
    values: dict[str, list[str]] = {}
    for key, value in items:
        values.setdefault(key, []).append(value)
    for key, found in values.items():
        limits.check_repeats(key, len(found))
    return values


def _unique(sets: Iterable[frozenset[str]]) -> list[frozenset[str]]:
    """Equal conditions once, first occurrence first (repeats change no answer)."""
    return list(dict.fromkeys(sets))


# -- UUIDs -----------------------------------------------------------------

def _parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _compact(value: str) -> str:
    return (
        value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    )


def is_lenient_uuid(value: str) -> bool:
    """32 hex digits in any case, hyphens anywhere, optional braces and ``urn:uuid:``."""
    parsed = _parse_uuid(value)
    return parsed is not None and parsed.hex == _compact(value)


def normalize_uuid(value: str) -> str:
    """Lower-case hyphenated form of a lenient UUID (``ValueError`` if it is not one)."""
    if not is_lenient_uuid(value):
        raise ValueError(f"{value!r} is not a UUID")
    return str(uuid.UUID(value))


def is_strict_uuid(value: str) -> bool:
    """The ``format: uuid`` check of query schemas: hyphens at the canonical places."""
    if _parse_uuid(value) is None:
        return False
    return len(value) > 23 and all(value[index] == "-" for index in (8, 13, 18, 23))


# -- query schema helpers ----------------------------------------------------

def check_allowed_keys(keys: Iterable[str], allowed: Iterable[str]) -> None:
    """400 ``Additional properties are not allowed`` for keys outside ``allowed``."""
    allowed_set = set(allowed)
    unexpected = sorted({key for key in keys if key not in allowed_set})
    if not unexpected:
        return
    names = ", ".join(repr(key) for key in unexpected)
    verb = "was" if len(unexpected) == 1 else "were"
    raise InvalidInput(
        f"{INVALID_QUERY}Additional properties are not allowed ({names} {verb} unexpected)"
    )


def pretty(thing: object) -> str:
    """A schema or instance as the JSON Schema validator's messages print it."""
    return textwrap.indent(pprint.pformat(thing, width=72, sort_dicts=False), "    ")


def schema_failure(
    message: str, keyword: str, schema: object, instance: object, path: tuple[str, ...] = ()
) -> str:
    """A validation failure worded as the reference's JSON Schema validator words
    it: the message, the failing (sub)schema and the instance, with their paths."""
    where = "".join(f"[{part!r}]" for part in path)
    schema_where = "".join(f"[{part!r}]" for part in (("properties", *path) if path else ()))
    return (
        f"{message}\n\nFailed validating {keyword!r} in schema{schema_where}:\n"
        f"{pretty(schema)}\n\nOn instance{where}:\n{pretty(instance)}"
    )


def _property_failure(value: str, spec: dict[str, object]) -> tuple[str, str] | None:
    """The first keyword of a string property's schema that ``value`` fails."""
    for keyword, bound in spec.items():
        if keyword == "minLength" and isinstance(bound, int) and len(value) < bound:
            return keyword, (f"{value!r} should be non-empty" if bound == 1
                             else f"{value!r} is too short")
        if keyword == "maxLength" and isinstance(bound, int) and len(value) > bound:
            return keyword, f"{value!r} is too long"
        if keyword == "pattern" and isinstance(bound, str) and not re.search(bound, value):
            return keyword, f"{value!r} does not match {bound!r}"
        if keyword == "format" and bound == "uuid" and not is_strict_uuid(value):
            return keyword, f"{value!r} is not a 'uuid'"
    return None


def check_query_schema(instance: dict[str, str], schema: dict[str, object]) -> None:
    """400 with the failure the reference's validator reports for a flat query
    schema (string properties, ``required``, no additional properties): the
    shallowest first (``required``, then additional keys), then the first
    failing property in the schema's order."""
    properties = schema["properties"]
    assert isinstance(properties, dict)
    required = schema.get("required", [])
    assert isinstance(required, list)
    for key in required:
        if key not in instance:
            raise InvalidInput(INVALID_QUERY + schema_failure(
                f"{key!r} is a required property", "required", schema, instance))
    extras = sorted(key for key in instance if key not in properties)
    if extras:
        names = ", ".join(repr(key) for key in extras)
        verb = "was" if len(extras) == 1 else "were"
        raise InvalidInput(INVALID_QUERY + schema_failure(
            f"Additional properties are not allowed ({names} {verb} unexpected)",
            "additionalProperties", schema, instance))
    for key, spec in properties.items():
        if key in instance:
            failed = _property_failure(instance[key], spec)
            if failed is not None:
                keyword, message = failed
                raise InvalidInput(INVALID_QUERY + schema_failure(
                    message, keyword, spec, instance[key], (key,)))


def check_strict_uuid(key: str, value: str) -> None:
    """400 in the words of the query schema's ``format: uuid`` validator."""
    if not is_strict_uuid(value):
        raise InvalidInput(
            f"{INVALID_QUERY}{value!r} is not a 'uuid'\n\nFailed validating 'format' in "
            f"schema['properties'][{key!r}]:\n    {{'type': 'string', 'format': 'uuid'}}"
            f"\n\nOn instance[{key!r}]:\n    {value!r}"
        )


# -- resources ---------------------------------------------------------------

def parse_resources(value: str) -> dict[str, int]:
    """``RC:AMOUNT[,RC:AMOUNT...]`` -> amounts by class name (last one wins)."""
    if value.strip() == "":
        raise InvalidInput(_RESOURCES_FORM.format(got="empty string"))
    result: dict[str, int] = {}
    for item in value.split(","):
        parts = item.split(":")
        if len(parts) != 2:
            raise InvalidInput(_RESOURCES_FORM.format(got=item))
        name, raw_amount = parts
        try:
            amount = int(raw_amount)
        except ValueError:
            raise InvalidInput(
                f"Requested resource {name} expected positive integer amount. "
                f"Got: {raw_amount}."
            ) from None
        if amount < 1:
            raise InvalidInput(f"Requested resource {name} requires amount >= 1. Got: {amount}.")
        result[name] = amount
    return result


# -- required (traits) ---------------------------------------------------------

@dataclass
class TraitFilter:
    """Traits a provider must have and must not have.

    ``required`` holds any-of sets ANDed together; a plain required trait is
    a one-element set.
    """

    required: list[frozenset[str]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)

    @property
    def names(self) -> set[str]:
        """Every trait named (required or forbidden)."""
        return set().union(*self.required, self.forbidden)

    def __bool__(self) -> bool:
        return bool(self.required or self.forbidden)


def _parse_any_traits(value: str) -> frozenset[str]:
    traits = frozenset(item.strip() for item in value[3:].split(","))
    if not all(traits):
        raise InvalidInput(
            f"{INVALID_QUERY}Expected 'required' parameter value of the form: "
            f"{_ANY_TRAITS_FORM}. Got an empty trait in: {value}"
        )
    if any(trait.startswith("!") for trait in traits):
        raise InvalidInput(
            f"{INVALID_QUERY}The format '{_ANY_TRAITS_FORM}' does not support forbidden "
            f"traits. Got: {value}"
        )
    return traits


def _parse_trait_list(
    value: str, allow_forbidden: bool
) -> tuple[list[frozenset[str]], set[str]]:
    items = [item.strip() for item in value.split(",")]
    forbidden = {item.lstrip("!") for item in items if item.startswith("!")}
    if not all(items) or not all(forbidden):
        form = "HW_CPU_X86_VMX,!CUSTOM_MAGIC" if allow_forbidden else "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        raise InvalidInput(
            f"{INVALID_QUERY}Expected 'required' parameter value of the form: {form}. "
            f"Got an empty trait in: {value}"
        )
    if forbidden and not allow_forbidden:
        raise InvalidInput(
            f"{INVALID_QUERY}Expected 'required' parameter value of the form: "
            f"HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}"
        )
    required = [frozenset({item}) for item in items if not item.startswith("!")]
    return required, forbidden


def parse_required(
    values: list[str], version: Version, key: str = "required",
    limits: QueryLimits = DEFAULT_LIMITS,
) -> TraitFilter:
    """All occurrences of a ``required*`` parameter, in query-string order.

    Below 1.39 only the last occurrence counts and ``in:`` is refused;
    below 1.22 ``!`` is refused. ``key`` is accepted for symmetry with
    ``parse_member_of``: the reference's texts always say ``'required'``.
    """
    allow_forbidden = version >= FORBIDDEN_TRAITS
    allow_any = version >= ANY_TRAITS
    if not allow_any:
        values = values[-1:]
    result = TraitFilter()
    for value in values:
        if value.startswith("in:"):
            if not allow_any:
                raise InvalidInput(
                    f"{INVALID_QUERY}The format '{_ANY_TRAITS_FORM}' only supported since "
                    f"microversion 1.39. Got: {value}"
                )
            any_of = _parse_any_traits(value)
            limits.check_in_items(key, len(any_of))
            result.required.append(any_of)
            continue
        required, forbidden = _parse_trait_list(value, allow_forbidden)
        result.required.extend(required)
        result.forbidden |= forbidden
    result.required = _unique(result.required)
    limits.check_traits(key, len(result.required) + len(result.forbidden))
    return result


# -- member_of (aggregates) ------------------------------------------------------

@dataclass
class AggregateFilter:
    """Aggregates a provider must be in (any-of sets ANDed) and must not be in."""

    required: list[frozenset[str]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.required or self.forbidden)


def _parse_member_of_value(value: str) -> tuple[list[str], list[str]]:
    if "," in value and not (value.startswith("in:") or value.startswith("!in:")):
        raise InvalidInput(
            "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' "
            f"keyword using the valid microversion. Got: {value}"
        )
    required: list[str] = []
    forbidden: list[str] = []
    if value.startswith("!in:"):
        forbidden = value[4:].split(",")
    elif value.startswith("!"):
        forbidden = [value[1:]]
    elif value.startswith("in:"):
        required = value[3:].split(",")
    else:
        required = [value]
    for item in (*required, *forbidden):
        if not is_lenient_uuid(item):
            raise InvalidInput(
                f"{INVALID_QUERY}Expected 'member_of' parameter to contain valid UUID(s). "
                f"Got: {item}"
            )
    return required, forbidden


def parse_member_of(
    values: list[str], version: Version, key: str = "member_of",
    limits: QueryLimits = DEFAULT_LIMITS,
) -> AggregateFilter:
    """All occurrences of a ``member_of*`` parameter, in query-string order.

    Repetition needs 1.24 and ``!`` forms need 1.32. UUIDs are kept as given
    (aggregates are compared as stored strings).
    """
    if version < MULTIPLE_MEMBER_OF and len(values) > 1:
        raise InvalidInput(f"Multiple {key} parameters are not supported")
    result = AggregateFilter()
    for value in values:
        limits.check_in_items(key, value.count(",") + 1)
        required, forbidden = _parse_member_of_value(value)
        if required:
            result.required.append(frozenset(required))
        if forbidden:
            if version < FORBIDDEN_AGGREGATES:
                raise InvalidInput(
                    f"Forbidden {key} parameters are not supported in the specified "
                    "microversion"
                )
            result.forbidden |= set(forbidden)
    result.required = _unique(result.required)
    return result


def parse_in_tree(value: str) -> str:
    """A lenient provider UUID (whitespace stripped), as ``in_tree*`` on candidates."""
    stripped = value.strip()
    if not is_lenient_uuid(stripped):
        raise InvalidInput(
            f"{INVALID_QUERY}Expected 'in_tree' parameter to be a format of uuid. "
            f"Got: {value}"
        )
    return stripped
