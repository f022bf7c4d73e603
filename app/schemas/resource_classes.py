"""Resource class bodies."""

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints

CUSTOM_RC_PATTERN = r"^CUSTOM_[A-Z0-9_]+$"

CustomClassName = Annotated[str, StringConstraints(pattern=CUSTOM_RC_PATTERN, max_length=255)]


class ResourceClassBody(BaseModel):
    """``POST /resource_classes`` and the 1.2-1.6 rename ``PUT``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    # The reference's schema (its 400s print it).
    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": CUSTOM_RC_PATTERN,
                                "maxLength": 255}},
        "required": ["name"],
        "additionalProperties": False,
    }

    name: CustomClassName


class Link(BaseModel):
    rel: str
    href: str


class ResourceClassOut(BaseModel):
    name: str
    links: list[Link]


class ResourceClassList(BaseModel):
    resource_classes: list[ResourceClassOut]
