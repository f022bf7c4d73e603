"""JSON schemas of the request and response models, as one microversion sees them.

A model's fields can be marked with the versions that add or remove them
(``app.schemas.versioned.since`` / ``until`` in ``json_schema_extra``); a
field also gets its mark from the route's model lineage, when the model of a
later version adds it (``ConsumerAllocationsOutV1_12`` adds ``project_id``).
The document of a version keeps only the fields that version has.
"""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from app.microversion import ERROR_CODES, Version, format_version, parse_version
from app.schemas.versioned import OPTIONAL, SINCE, UNTIL, ByVersion

REF = "#/components/schemas/{model}"


class _Generator(GenerateJsonSchema):
    """Responses: every field is present unless marked optional."""

    def field_is_required(self, field: Any, total: bool) -> bool:
        if self.mode == "serialization":
            return True
        return super().field_is_required(field, total)


def model_schemas(
    models: list[tuple[type[BaseModel], JsonSchemaMode]], version: Version
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]], dict[str, Any]]:
    """The schema of each model (a ``$ref``) and the components, at ``version``."""
    if not models:
        return {}, {}
    schemas, definitions = models_json_schema(
        models, ref_template=REF, schema_generator=_Generator
    )
    components: dict[str, Any] = definitions.get("$defs", {})
    for component in components.values():
        _filter_fields(component, version)
    return dict(schemas.items()), components  # type: ignore[arg-type]


def _in_range(schema: dict[str, Any], version: Version) -> bool:
    since = schema.get(SINCE)
    until = schema.get(UNTIL)
    if since is not None and version < parse_version(since):
        return False
    return not (until is not None and version > parse_version(until))


def _filter_fields(component: dict[str, Any], version: Version) -> None:
    properties: dict[str, Any] | None = component.get("properties")
    if not properties:
        return
    for name, schema in list(properties.items()):
        if not _in_range(schema, version):
            del properties[name]
    required = [
        name for name in component.get("required", [])
        if name in properties and not properties[name].get(OPTIONAL)
    ]
    if required:
        component["required"] = required
    else:
        component.pop("required", None)


def mark_lineage(
    components: dict[str, Any], models: ByVersion, since: Version, until: Version,
    version: Version,
) -> None:
    """Mark the fields of the model at ``version`` that other versions lack."""
    model = models(version)
    if model is None:
        return
    component = components.get(model.__name__)
    if component is None or "properties" not in component:
        return
    lineage = [
        (minor, models((since[0], minor)))
        for minor in range(since[1], until[1] + 1)
    ]
    for name, schema in component["properties"].items():
        present = [minor for minor, each in lineage if each and name in each.model_fields]
        if not present:
            continue
        first, last = present[0], present[-1]
        if first > since[1] and SINCE not in schema:
            schema[SINCE] = format_version((since[0], first))
        if last < until[1] and UNTIL not in schema:
            schema[UNTIL] = format_version((since[0], last))


def error_schema(version: Version) -> dict[str, Any]:
    """The placement error body (``code`` from 1.23)."""
    required = ["status", "title", "detail", "request_id"]
    if version >= ERROR_CODES:
        required.insert(3, "code")
    item: dict[str, Any] = {
        "type": "object",
        "required": required,
        "properties": {
            "status": {"type": "integer"},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
        },
    }
    if version >= ERROR_CODES:
        item["properties"]["code"] = {
            "type": "string",
            "description": "A machine-readable code, such as "
            "`placement.concurrent_update` (from 1.23).",
        }
    return {
        "type": "object",
        "required": ["errors"],
        "properties": {"errors": {"type": "array", "minItems": 1, "items": item}},
    }
