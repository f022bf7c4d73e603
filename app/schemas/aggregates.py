"""Provider aggregate bodies: a bare list (1.1-1.18), an object with generation (1.19+).

Aggregate UUIDs are lenient, as the reference's ``uuid`` format is: 32 hex
digits in any case, hyphens anywhere, optional braces and ``urn:uuid:``
prefix. They are stored as sent.
"""

from typing import Annotated, Any, ClassVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    Strict,
)

from app.microversion import AGGREGATES, AGGREGATES_GENERATION
from app.query import is_lenient_uuid
from app.schemas.traits import Generation
from app.schemas.validation import schema_error
from app.schemas.versioned import ByVersion, since

# The width of placement_aggregates.uuid; longer spellings of a UUID cannot be stored.
AGGREGATE_UUID_MAX_LENGTH = 36


def _check_aggregate_uuid(value: str) -> str:
    if not is_lenient_uuid(value):
        raise schema_error("format", f"{value!r} is not a 'uuid'")
    if len(value) > AGGREGATE_UUID_MAX_LENGTH:
        raise schema_error("maxLength", f"{value!r} is too long")
    return value


def _unique_items(value: Any) -> Any:
    # JSON Schema reports uniqueItems before the items' own failures.
    if isinstance(value, list):
        seen: set[bytes] = set()
        for item in value:
            try:
                key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            except TypeError:
                continue
            if key in seen:
                raise schema_error("uniqueItems", f"{value!r} has non-unique elements")
            seen.add(key)
    return value


AggregateUuid = Annotated[str, Strict(), AfterValidator(_check_aggregate_uuid)]
AggregateUuids = Annotated[list[AggregateUuid], BeforeValidator(_unique_items)]


# The reference's schemas (its 400s print them).
_UUID_LIST: dict[str, Any] = {
    "type": "array", "items": {"type": "string", "format": "uuid"}, "uniqueItems": True,
}


class AggregatesBody(RootModel[AggregateUuids]):
    """1.1-1.18: a bare JSON array of unique aggregate UUIDs."""

    model_config = ConfigDict(strict=True)
    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = _UUID_LIST


class AggregatesBodyV1_19(BaseModel):
    """1.19+: the list plus the provider generation the client last saw."""

    model_config = ConfigDict(extra="forbid", strict=True)
    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"aggregates": _UUID_LIST,
                       "resource_provider_generation": {"type": "integer"}},
        "required": ["aggregates", "resource_provider_generation"],
        "additionalProperties": False,
    }

    aggregates: AggregateUuids
    resource_provider_generation: Generation


class ProviderAggregates(BaseModel):
    aggregates: list[str]
    resource_provider_generation: int = Field(json_schema_extra=since(AGGREGATES_GENERATION))


AGGREGATES_BODIES = ByVersion(
    (AGGREGATES, AggregatesBody), (AGGREGATES_GENERATION, AggregatesBodyV1_19)
)
