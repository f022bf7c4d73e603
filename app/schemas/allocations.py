"""Allocation bodies (``PUT /allocations/{c}``, ``POST /allocations``) and the
``GET /usages`` query, one model per microversion that changed them.

Each version's model extends the previous one, so the table at the bottom
doubles as the changelog of the allocation write format.
"""

import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    model_validator,
)

from app.exceptions import AllocationViolatesConstraints
from app.microversion import (
    ALLOCATION_OWNER_REQUIRED,
    ALLOCATIONS_DICT_FORM,
    BASE,
    CANDIDATE_MAPPINGS,
    CONSUMER_GENERATIONS,
    CONSUMER_TYPES,
    POST_ALLOCATIONS,
    RESHAPER,
    Version,
)
from app.records import MAX_INT
from app.schemas.validation import SCHEMA_ATTRIBUTE, schema_error
from app.schemas.versioned import OPTIONAL_FIELD, ByVersion

RC_PATTERN = r"^[A-Z0-9_]+$"
UUID_KEY_PATTERN = r"^[0-9a-fA-F-]{36}$"
CONSUMER_TYPE_PATTERN = r"^[A-Z0-9_]+$"
# Only start-anchored in its middle alternative, as the reference has it (quirk Q10).
CONSUMER_TYPE_QUERY_PATTERN = r"^[A-Z0-9_]+$|^all|^unknown$"
# ``mappings`` keys are checked only when they contain a group-suffix character.
MAPPING_KEY_PATTERN = r"[a-zA-Z0-9_-]{1,64}"


def is_uuid_like(value: object) -> bool:
    """Lenient UUID: 32 hex digits, any case, hyphens anywhere, braces, urn prefix."""
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    stripped = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "")
    return parsed.hex == stripped.lower()


def normalize_uuid(value: str) -> str:
    return str(uuid.UUID(value))


def keys_matching(pattern: str) -> Callable[[Any], Any]:
    """Reject object keys that match no pattern, in JSON Schema's words."""
    regex = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, dict):
            extras = sorted(key for key in value if not regex.search(key))
            if extras:
                verb = "does" if len(extras) == 1 else "do"
                joined = ", ".join(repr(key) for key in extras)
                raise schema_error(
                    "additionalProperties",
                    f"{joined} {verb} not match any of the regexes: {pattern!r}",
                )
        return value

    return check


def _uuid_format(value: Any) -> Any:
    if isinstance(value, str) and not is_uuid_like(value):
        raise schema_error("format", f"{value!r} is not a 'uuid'")
    return value


def _int_or_null(value: Any) -> Any:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise schema_error("type", f"{value!r} is not of type 'integer', 'null'")
    return value


def _mappings(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    regex = re.compile(MAPPING_KEY_PATTERN)
    for key, item in value.items():
        if not regex.search(key):
            continue
        if not isinstance(item, list):
            raise schema_error("type", f"{item!r} is not of type 'array'", at=(key,))
        if not item:
            raise schema_error("minItems", "[] should be non-empty", at=(key,))
        for index, entry in enumerate(item):
            if not isinstance(entry, str):
                raise schema_error(
                    "type", f"{entry!r} is not of type 'string'", at=(key, index))
            if not is_uuid_like(entry):
                raise schema_error("format", f"{entry!r} is not a 'uuid'", at=(key, index))
    return value


StrictInt = Annotated[int, Field(strict=True)]
Amount = Annotated[int, Field(strict=True, ge=1)]
ExternalId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
ConsumerType = Annotated[
    str,
    StringConstraints(strict=True, pattern=CONSUMER_TYPE_PATTERN, min_length=1, max_length=255),
]
LenientUUID = Annotated[str, Field(strict=True), BeforeValidator(_uuid_format)]
Resources = Annotated[
    dict[str, Amount], BeforeValidator(keys_matching(RC_PATTERN)), Field(min_length=1)
]
Mappings = Annotated[dict[str, Any], BeforeValidator(_mappings), Field(min_length=1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- list form (1.0 - 1.11) -------------------------------------------------


class ProviderRef(_Body):
    uuid: LenientUUID


class AllocationItem(_Body):
    resource_provider: ProviderRef
    resources: Resources


def check_amounts(provider_uuid: str, resources: dict[str, int]) -> None:
    """An amount beyond the int32 columns exceeds every ``max_unit``: the
    reference's 409, raised before the amount reaches a statement."""
    for name, amount in resources.items():
        if amount > MAX_INT:
            raise AllocationViolatesConstraints(resource_class=name, uuid=provider_uuid)


class AllocationsV1_0(_Body):
    """1.0: a list of ``{"resource_provider": {"uuid"}, "resources"}``."""

    allocations: Annotated[list[AllocationItem], Field(min_length=1)]

    @model_validator(mode="after")
    def _amounts(self) -> "AllocationsV1_0":
        for item in self.allocations:
            check_amounts(item.resource_provider.uuid, item.resources)
        return self


class AllocationsV1_8(AllocationsV1_0):
    """1.8: ``project_id`` and ``user_id`` are required."""

    project_id: ExternalId
    user_id: ExternalId


# -- dict form (1.12+) ------------------------------------------------------


class ProviderAllocation(_Body):
    resources: Resources
    # Accepted and ignored; an explicit null is not an integer.
    generation: StrictInt = 0


ProviderAllocations = Annotated[
    dict[str, ProviderAllocation],
    BeforeValidator(keys_matching(UUID_KEY_PATTERN)),
]
NonEmptyProviderAllocations = Annotated[ProviderAllocations, Field(min_length=1)]


class AllocationsV1_12(_Body):
    """1.12: a dict keyed by provider uuid (at least one)."""

    allocations: NonEmptyProviderAllocations
    project_id: ExternalId
    user_id: ExternalId

    @model_validator(mode="after")
    def _amounts(self) -> "AllocationsV1_12":
        for provider, allocation in self.allocations.items():
            check_amounts(provider, allocation.resources)
        return self


class ConsumerAllocationsV1_13(_Body):
    """One consumer of ``POST /allocations`` (1.13): ``{}`` clears it."""

    allocations: ProviderAllocations
    project_id: ExternalId
    user_id: ExternalId

    @model_validator(mode="after")
    def _amounts(self) -> "ConsumerAllocationsV1_13":
        for provider, allocation in self.allocations.items():
            check_amounts(provider, allocation.resources)
        return self


class AllocationsV1_28(ConsumerAllocationsV1_13):
    """1.28: ``consumer_generation`` (null for a new consumer) is required and
    ``allocations`` may be empty (PUT deletes)."""

    consumer_generation: Annotated[int | None, BeforeValidator(_int_or_null)]


class AllocationsV1_34(AllocationsV1_28):
    """1.34: ``mappings`` accepted and ignored."""

    mappings: Mappings = None  # type: ignore[assignment]


class AllocationsV1_38(AllocationsV1_34):
    """1.38: ``consumer_type`` is required."""

    consumer_type: ConsumerType


def _consumers(model: type[BaseModel], minimum: int) -> Any:
    return Annotated[
        dict[str, model],  # type: ignore[valid-type]
        BeforeValidator(keys_matching(UUID_KEY_PATTERN)),
        Field(min_length=minimum),
    ]


class PostAllocationsV1_13(RootModel[_consumers(ConsumerAllocationsV1_13, 1)]):  # type: ignore[misc]
    pass


class PostAllocationsV1_28(RootModel[_consumers(AllocationsV1_28, 1)]):  # type: ignore[misc]
    pass


class PostAllocationsV1_34(RootModel[_consumers(AllocationsV1_34, 1)]):  # type: ignore[misc]
    pass


class PostAllocationsV1_38(RootModel[_consumers(AllocationsV1_38, 1)]):  # type: ignore[misc]
    pass


# Reshaper ``allocations`` (may be empty) by version.
class ReshaperAllocationsV1_30(RootModel[_consumers(AllocationsV1_28, 0)]):  # type: ignore[misc]
    pass


class ReshaperAllocationsV1_34(RootModel[_consumers(AllocationsV1_34, 0)]):  # type: ignore[misc]
    pass


class ReshaperAllocationsV1_38(RootModel[_consumers(AllocationsV1_38, 0)]):  # type: ignore[misc]
    pass


# Request bodies by the version that introduced them.
PUT_BODIES = ByVersion(
    (BASE, AllocationsV1_0),
    (ALLOCATION_OWNER_REQUIRED, AllocationsV1_8),
    (ALLOCATIONS_DICT_FORM, AllocationsV1_12),
    (CONSUMER_GENERATIONS, AllocationsV1_28),
    (CANDIDATE_MAPPINGS, AllocationsV1_34),
    (CONSUMER_TYPES, AllocationsV1_38),
)
POST_BODIES = ByVersion(
    (POST_ALLOCATIONS, PostAllocationsV1_13),
    (CONSUMER_GENERATIONS, PostAllocationsV1_28),
    (CANDIDATE_MAPPINGS, PostAllocationsV1_34),
    (CONSUMER_TYPES, PostAllocationsV1_38),
)
RESHAPER_ALLOCATION_BODIES = ByVersion(
    (RESHAPER, ReshaperAllocationsV1_30),
    (CANDIDATE_MAPPINGS, ReshaperAllocationsV1_34),
    (CONSUMER_TYPES, ReshaperAllocationsV1_38),
)


# -- responses (documentation: handlers render the bodies themselves) -------


class ProviderAllocationOut(BaseModel):
    generation: int
    resources: dict[str, int]


class ConsumerAllocationsOutV1_0(BaseModel):
    """``GET /allocations/{uuid}``: ``{}`` for a consumer without allocations."""

    allocations: dict[str, ProviderAllocationOut]


class ConsumerAllocationsOutV1_12(ConsumerAllocationsOutV1_0):
    """1.12: the owner, when there are allocations (absent otherwise)."""

    project_id: str = Field(json_schema_extra=OPTIONAL_FIELD)
    user_id: str = Field(json_schema_extra=OPTIONAL_FIELD)


class ConsumerAllocationsOutV1_28(ConsumerAllocationsOutV1_12):
    consumer_generation: int = Field(json_schema_extra=OPTIONAL_FIELD)


class ConsumerAllocationsOutV1_38(ConsumerAllocationsOutV1_28):
    consumer_type: str = Field(json_schema_extra=OPTIONAL_FIELD)


class ConsumerResourcesOutV1_0(BaseModel):
    resources: dict[str, int]


class ConsumerResourcesOutV1_28(ConsumerResourcesOutV1_0):
    consumer_generation: int | None


class ProviderAllocationsOutV1_0(BaseModel):
    """``GET /resource_providers/{uuid}/allocations``."""

    resource_provider_generation: int
    allocations: dict[str, ConsumerResourcesOutV1_0]


class ProviderAllocationsOutV1_28(ProviderAllocationsOutV1_0):
    allocations: dict[str, ConsumerResourcesOutV1_28]  # type: ignore[assignment]


CONSUMER_ALLOCATIONS_OUT = ByVersion(
    (BASE, ConsumerAllocationsOutV1_0),
    (ALLOCATIONS_DICT_FORM, ConsumerAllocationsOutV1_12),
    (CONSUMER_GENERATIONS, ConsumerAllocationsOutV1_28),
    (CONSUMER_TYPES, ConsumerAllocationsOutV1_38),
)
PROVIDER_ALLOCATIONS_OUT = ByVersion(
    (BASE, ProviderAllocationsOutV1_0),
    (CONSUMER_GENERATIONS, ProviderAllocationsOutV1_28),
)


# -- GET /usages query ------------------------------------------------------


class UsagesQueryV1_9(_Body):
    project_id: ExternalId
    user_id: ExternalId = None  # type: ignore[assignment]


class UsagesQueryV1_38(UsagesQueryV1_9):
    consumer_type: Annotated[
        str,
        StringConstraints(
            strict=True, pattern=CONSUMER_TYPE_QUERY_PATTERN, min_length=1, max_length=255
        ),
    ] = None  # type: ignore[assignment]


# -- the reference's schemas of the PUT bodies (its 400s print parts of them) --

_EXTERNAL_ID: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255}
_RESOURCES: dict[str, Any] = {
    "type": "object", "minProperties": 1,
    "patternProperties": {RC_PATTERN: {"type": "integer", "minimum": 1}},
    "additionalProperties": False,
}
_LIST_FORM: dict[str, Any] = {
    "type": "array", "minItems": 1,
    "items": {
        "type": "object",
        "properties": {
            "resource_provider": {
                "type": "object",
                "properties": {"uuid": {"type": "string", "format": "uuid"}},
                "additionalProperties": False, "required": ["uuid"],
            },
            "resources": _RESOURCES,
        },
        "required": ["resource_provider", "resources"],
        "additionalProperties": False,
    },
}


def _dict_form(min_properties: int) -> dict[str, Any]:
    return {
        "type": "object", "minProperties": min_properties,
        "patternProperties": {UUID_KEY_PATTERN: {
            "type": "object",
            "properties": {"generation": {"type": "integer"}, "resources": _RESOURCES},
            "required": ["resources"], "additionalProperties": False,
        }},
        "additionalProperties": False,
    }


def _put_schema(version: Version) -> dict[str, Any]:
    """The PUT schema at ``version``."""
    if version < ALLOCATIONS_DICT_FORM:
        properties: dict[str, Any] = {"allocations": _LIST_FORM}
        required = ["allocations"]
        if version >= ALLOCATION_OWNER_REQUIRED:
            properties |= {"project_id": _EXTERNAL_ID, "user_id": _EXTERNAL_ID}
            required += ["project_id", "user_id"]
        return {"type": "object", "properties": properties, "required": required,
                "additionalProperties": False}
    properties = {"allocations": _dict_form(1 if version < CONSUMER_GENERATIONS else 0),
                  "project_id": _EXTERNAL_ID, "user_id": _EXTERNAL_ID}
    required = ["allocations", "project_id", "user_id"]
    if version >= CONSUMER_GENERATIONS:
        properties["consumer_generation"] = {
            "type": ["integer", "null"], "additionalProperties": False}
        required.append("consumer_generation")
    if version >= CANDIDATE_MAPPINGS:
        properties["mappings"] = {
            "type": "object", "minProperties": 1,
            "patternProperties": {MAPPING_KEY_PATTERN: {
                "type": "array", "minItems": 1, "items": {"type": "string", "format": "uuid"},
            }},
        }
    if version >= CONSUMER_TYPES:
        properties["consumer_type"] = {
            "type": "string", "pattern": CONSUMER_TYPE_PATTERN, "minLength": 1, "maxLength": 255,
        }
        required.append("consumer_type")
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": required}


def post_schema(version: Version) -> dict[str, Any]:
    """``POST /allocations``: consumers by uuid, each much like a PUT body."""
    consumer = _put_schema(max(version, ALLOCATIONS_DICT_FORM))
    consumer["properties"] = {**consumer["properties"], "allocations": _dict_form(0)}
    return {"type": "object", "minProperties": 1, "additionalProperties": False,
            "patternProperties": {UUID_KEY_PATTERN: consumer}}


for _since in (POST_ALLOCATIONS, CONSUMER_GENERATIONS, CANDIDATE_MAPPINGS, CONSUMER_TYPES):
    setattr(POST_BODIES.pick(_since), SCHEMA_ATTRIBUTE, post_schema(_since))
for _since in (BASE, ALLOCATION_OWNER_REQUIRED, ALLOCATIONS_DICT_FORM, CONSUMER_GENERATIONS,
               CANDIDATE_MAPPINGS, CONSUMER_TYPES):
    setattr(PUT_BODIES.pick(_since), SCHEMA_ATTRIBUTE, _put_schema(_since))
