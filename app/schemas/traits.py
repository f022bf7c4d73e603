"""Trait bodies and the ``GET /traits`` query string."""

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict

from app.schemas.validation import schema_error

CUSTOM_TRAIT_PATTERN = r"^CUSTOM_[A-Z0-9_]+$"
TRAIT_MAX_LENGTH = 255
_CUSTOM_TRAIT = re.compile(CUSTOM_TRAIT_PATTERN)

def is_custom_trait_name(name: str) -> bool:
    """Whether ``name`` may be created through ``PUT /traits/{name}``."""
    return len(name) <= TRAIT_MAX_LENGTH and _CUSTOM_TRAIT.match(name) is not None


def _check_trait_length(value: str) -> str:
    if not value:
        raise schema_error("minLength", f"{value!r} should be non-empty")
    if len(value) > TRAIT_MAX_LENGTH:
        raise schema_error("maxLength", f"{value!r} is too long")
    return value


def _integral_float_to_int(value: Any) -> Any:
    # JSON Schema's "integer" admits 1.0; booleans stay rejected by the strict int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


TraitName = Annotated[str, Strict(), AfterValidator(_check_trait_length)]
Generation = Annotated[int, Strict(), BeforeValidator(_integral_float_to_int)]


class ProviderTraitsBody(BaseModel):
    """``PUT /resource_providers/{uuid}/traits``: any trait names, checked later."""

    model_config = ConfigDict(extra="forbid", strict=True)
    # The reference's schema (its 400s print it).
    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "traits": {"type": "array",
                       "items": {"type": "string", "minLength": 1, "maxLength": 255}},
            "resource_provider_generation": {"type": "integer"},
        },
        "required": ["traits", "resource_provider_generation"],
        "additionalProperties": False,
    }

    traits: list[TraitName]
    resource_provider_generation: Generation


class TraitListQuery(BaseModel):
    """The keys ``GET /traits`` accepts (values are checked by the handler)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = None
    associated: str | None = None


class TraitList(BaseModel):
    traits: list[str]


class ProviderTraits(BaseModel):
    traits: list[str]
    resource_provider_generation: int
