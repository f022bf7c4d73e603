"""Resource class bodies."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

CUSTOM_RC_PATTERN = r"^CUSTOM_[A-Z0-9_]+$"

CustomClassName = Annotated[str, StringConstraints(pattern=CUSTOM_RC_PATTERN, max_length=255)]


class ResourceClassBody(BaseModel):
    """``POST /resource_classes`` and the 1.2-1.6 rename ``PUT``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: CustomClassName


class Link(BaseModel):
    rel: str
    href: str


class ResourceClassOut(BaseModel):
    name: str
    links: list[Link]


class ResourceClassList(BaseModel):
    resource_classes: list[ResourceClassOut]
