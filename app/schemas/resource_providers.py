"""Resource provider bodies and the provider representation (spec §4.1, §4.3, §4.5)."""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.microversion import (
    AGGREGATES,
    ALLOCATIONS_LINK,
    BASE,
    CREATE_PROVIDER_RETURNS_BODY,
    NESTED_PROVIDERS,
    TRAITS,
    Version,
)
from app.query import is_lenient_uuid
from app.records import ProviderRow
from app.schemas.validation import schema_error
from app.schemas.versioned import ByVersion, since

NAME_MAX_LENGTH = 200



def _lenient_uuid(value: Any) -> Any:
    if isinstance(value, str) and not is_lenient_uuid(value):
        raise schema_error("format", f"{value!r} is not a 'uuid'")
    return value


_NAME = {"type": "string", "maxLength": NAME_MAX_LENGTH}
_PARENT = {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}


def _reference(**properties: object) -> dict[str, Any]:
    """The reference's schema of a provider body (its 400s print it)."""
    return {"type": "object", "properties": properties, "required": ["name"],
            "additionalProperties": False}


class ProviderCreate(BaseModel):
    """``POST /resource_providers`` body, 1.0-1.13."""

    model_config = ConfigDict(extra="forbid", strict=True)
    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = _reference(
        name=_NAME, uuid={"type": "string", "format": "uuid"}
    )

    name: str = Field(max_length=NAME_MAX_LENGTH)
    uuid: str | None = None

    @field_validator("uuid", mode="before")
    @classmethod
    def _check_uuid(cls, value: Any) -> Any:
        if value is None:
            raise schema_error("type", "None is not of type 'string'")
        return _lenient_uuid(value)


class ProviderCreateV1_14(ProviderCreate):
    """1.14+: a parent may be named (``null`` for none)."""

    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = _reference(
        name=_NAME, uuid={"type": "string", "format": "uuid"}, parent_provider_uuid=_PARENT
    )

    parent_provider_uuid: str | None = None

    @field_validator("parent_provider_uuid", mode="before")
    @classmethod
    def _check_parent(cls, value: Any) -> Any:
        return _lenient_uuid(value)


class ProviderUpdate(BaseModel):
    """``PUT /resource_providers/{uuid}`` body, 1.0-1.13 (an empty name is accepted)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = _reference(name=_NAME)

    name: str = Field(max_length=NAME_MAX_LENGTH)


class ProviderUpdateV1_14(ProviderUpdate):
    """1.14+: ``parent_provider_uuid`` may be given; omitting it keeps the parent."""

    REFERENCE_SCHEMA: ClassVar[dict[str, Any]] = _reference(
        name=_NAME, parent_provider_uuid=_PARENT
    )

    parent_provider_uuid: str | None = None

    @field_validator("parent_provider_uuid", mode="before")
    @classmethod
    def _check_parent(cls, value: Any) -> Any:
        return _lenient_uuid(value)


CREATE_BODIES = ByVersion((BASE, ProviderCreate), (NESTED_PROVIDERS, ProviderCreateV1_14))
UPDATE_BODIES = ByVersion((BASE, ProviderUpdate), (NESTED_PROVIDERS, ProviderUpdateV1_14))


def create_schema(version: Version) -> type[ProviderCreate]:
    return ProviderCreateV1_14 if version >= NESTED_PROVIDERS else ProviderCreate


def update_schema(version: Version) -> type[ProviderUpdate]:
    return ProviderUpdateV1_14 if version >= NESTED_PROVIDERS else ProviderUpdate


def provider_links(uuid: str, version: Version, prefix: str = "") -> list[dict[str, str]]:
    base = f"{prefix}/resource_providers/{uuid}"
    links = [
        {"rel": "self", "href": base},
        {"rel": "inventories", "href": f"{base}/inventories"},
        {"rel": "usages", "href": f"{base}/usages"},
    ]
    if version >= AGGREGATES:
        links.append({"rel": "aggregates", "href": f"{base}/aggregates"})
    if version >= TRAITS:
        links.append({"rel": "traits", "href": f"{base}/traits"})
    if version >= ALLOCATIONS_LINK:
        links.append({"rel": "allocations", "href": f"{base}/allocations"})
    return links


def provider_body(provider: ProviderRow, version: Version, prefix: str = "") -> dict[str, Any]:
    """The provider as ``GET /resource_providers/{uuid}`` shows it at ``version``.

    ``prefix`` is the mount prefix (``http.link_prefix(request)``).
    """
    body: dict[str, Any] = {
        "uuid": provider.uuid,
        "name": provider.name,
        "generation": provider.generation,
        "links": provider_links(provider.uuid, version, prefix),
    }
    if version >= NESTED_PROVIDERS:
        body["parent_provider_uuid"] = provider.parent_provider_uuid
        body["root_provider_uuid"] = provider.root_provider_uuid or provider.uuid
    return body


class Link(BaseModel):
    rel: str
    href: str


class ProviderOut(BaseModel):
    """Documentation model of the representation (``parent``/``root`` at 1.14+)."""

    uuid: str
    name: str
    generation: int
    links: list[Link]
    parent_provider_uuid: str | None = Field(json_schema_extra=since(NESTED_PROVIDERS))
    root_provider_uuid: str = Field(json_schema_extra=since(NESTED_PROVIDERS))


class ProviderList(BaseModel):
    resource_providers: list[ProviderOut]


# POST /resource_providers: no body before 1.20 (201), the provider from it (200).
CREATED_OUT = ByVersion((BASE, None), (CREATE_PROVIDER_RETURNS_BODY, ProviderOut))
