"""Models by the microversion that introduced them."""

from typing import Any

from pydantic import BaseModel

from app.microversion import Version, format_version

Model = type[BaseModel]


class ByVersion:
    """``ByVersion((BASE, A), (AGGREGATES_GENERATION, B))``: A before 1.19, B from it.

    ``None`` as a model means "no body" from that version on.
    """

    def __init__(self, *entries: tuple[Version, Model | None]) -> None:
        self._entries = sorted(entries, key=lambda entry: entry[0], reverse=True)

    def __call__(self, version: Version) -> Model | None:
        for since, model in self._entries:
            if version >= since:
                return model
        return None

    def pick(self, version: Version) -> Model:
        """The model at ``version``, which must exist."""
        model = self(version)
        if model is None:
            raise LookupError(version)
        return model

    def models(self) -> list[Model]:
        return [model for _, model in self._entries if model is not None]


# Field marks read by the OpenAPI documents (``json_schema_extra``).
SINCE = "x-placement-since"
UNTIL = "x-placement-until"
# A response field that may be absent.
OPTIONAL = "x-placement-optional"


def since(version: Version, *, optional: bool = False) -> dict[str, Any]:
    """``Field(json_schema_extra=since(NESTED_PROVIDERS))``: a field added at 1.14."""
    mark: dict[str, Any] = {SINCE: format_version(version)}
    if optional:
        mark[OPTIONAL] = True
    return mark


def until(version: Version) -> dict[str, Any]:
    """A field the version after ``version`` removes."""
    return {UNTIL: format_version(version)}


OPTIONAL_FIELD: dict[str, Any] = {OPTIONAL: True}
