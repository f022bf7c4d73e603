"""``POST /reshaper`` body (1.30; 1.34 ``mappings``; 1.38 ``consumer_type``).

``{"inventories": {<rp uuid>: <PUT .../inventories body>, ...},
  "allocations": {<consumer uuid>: <POST /allocations entry>, ...}}``:
both required, ``inventories`` with at least one provider, ``allocations``
possibly empty. Each inventory entry is parsed exactly like a
``PUT .../inventories`` body; the allocations like ``POST /allocations`` at
the same version.
"""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from app.microversion import Version
from app.schemas.allocations import (
    RESHAPER_ALLOCATION_BODIES,
    UUID_KEY_PATTERN,
    keys_matching,
    post_schema,
)
from app.schemas.inventories import (
    PUT_SCHEMA,
    InventoriesBody,
    InventoriesPut,
    parse_inventories,
)
from app.schemas.validation import validate


class ReshapeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    inventories: Annotated[
        dict[str, Any],
        BeforeValidator(keys_matching(UUID_KEY_PATTERN)),
        Field(min_length=1),
        WithJsonSchema({
            "type": "object",
            "minProperties": 1,
            "description": "Provider UUID -> its whole inventory, as a "
            "`PUT /resource_providers/{uuid}/inventories` body.",
            "additionalProperties": InventoriesBody.model_json_schema(),
        }),
    ]
    allocations: dict[str, Any] = Field(
        description="Consumer UUID -> its allocations, as an entry of a "
        "`POST /allocations` body at the same microversion (may be empty)."
    )


def reference_schema(version: Version) -> dict[str, Any]:
    """The reference's schema of the body (its 400s print parts of it)."""
    consumers = post_schema(version)
    return {
        "type": "object",
        "properties": {
            "inventories": {"type": "object",
                            "patternProperties": {UUID_KEY_PATTERN: PUT_SCHEMA},
                            "minProperties": 1, "additionalProperties": False},
            "allocations": {**consumers, "minProperties": 0},
        },
        "required": ["inventories", "allocations"],
        "additionalProperties": False,
    }


class Reshape:
    def __init__(self, inventories: dict[str, InventoriesPut], allocations: BaseModel) -> None:
        self.inventories = inventories
        # consumer uuid -> that version's consumer allocations model
        self.allocations: dict[str, Any] = allocations.root  # type: ignore[attr-defined]


def parse_reshape(data: Any, version: Version) -> Reshape:
    """The body checked as a whole, then each inventory, then the allocations."""
    schema = reference_schema(version)
    outer = validate(data, ReshapeBody, schema=schema)
    inventories = {
        uuid: parse_inventories(body, within=uuid) for uuid, body in outer.inventories.items()
    }
    allocations = validate(outer.allocations, RESHAPER_ALLOCATION_BODIES.pick(version),
                           schema=schema, root=data, within=("allocations",))
    return Reshape(inventories, allocations)
