"""Render pydantic validation failures in the words of JSON Schema validators.

The reference validates bodies with JSON Schema, and clients and the
reference's own tests match on those messages ("'x' is a required property",
"Failed validating 'maximum'"). Models here raise the same wording.
"""

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from app.exceptions import InvalidInput
from app.query import pretty

ModelT = TypeVar("ModelT", bound=BaseModel)

# Custom error type for messages written in validators (ctx: keyword, message).
SCHEMA_ERROR = "json_schema"


def schema_error(keyword: str, message: str) -> PydanticCustomError:
    """An error a validator raises with a ready JSON Schema message."""
    return PydanticCustomError(SCHEMA_ERROR, "{message}", {"keyword": keyword, "message": message})


def _type_name(error_type: str) -> str | None:
    return {
        "int_type": "integer",
        "int_parsing": "integer",
        "int_from_float": "integer",
        "string_type": "string",
        "dict_type": "object",
        "model_type": "object",
        "model_attributes_type": "object",
        "list_type": "array",
        "float_type": "number",
        "float_parsing": "number",
        "bool_type": "boolean",
        "none_required": "null",
    }.get(error_type)


def _describe(error: ErrorDetails) -> tuple[str, str]:
    kind = error["type"]
    value: Any = error.get("input")
    ctx = error.get("ctx") or {}
    loc = error["loc"]
    if kind == SCHEMA_ERROR:
        return str(ctx["keyword"]), str(ctx["message"])
    if kind == "missing":
        return "required", f"{loc[-1]!r} is a required property"
    if kind == "extra_forbidden":
        return "additionalProperties", (
            f"Additional properties are not allowed ({loc[-1]!r} was unexpected)"
        )
    if kind == "string_pattern_mismatch":
        return "pattern", f"{value!r} does not match {ctx.get('pattern')!r}"
    if kind == "string_too_long":
        return "maxLength", f"{value!r} is too long"
    if kind == "string_too_short":
        return "minLength", f"{value!r} is too short"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return "minimum", f"{value!r} is less than the minimum of {bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return "maximum", f"{value!r} is greater than the maximum of {bound}"
    if kind == "too_short":
        if isinstance(value, dict):
            return "minProperties", f"{value!r} does not have enough properties"
        return "minItems", f"{value!r} is too short"
    if kind == "literal_error":
        return "enum", f"{value!r} is not one of {ctx.get('expected')}"
    type_name = _type_name(kind)
    if type_name is not None:
        return "type", f"{value!r} is not of type {type_name!r}"
    return "type", f"{value!r} is not valid under the given schema: {error['msg']}"


def describe_validation_error(exc: ValidationError) -> str:
    """The first failure, as ``<message>\\n\\nFailed validating '<keyword>' ...``."""
    return describe_error(exc.errors(include_url=False)[0])


_UNKNOWN = object()


def describe_error(
    error: ErrorDetails, *, schema_path: str | None = None, instance_path: str | None = None,
    schema: object = _UNKNOWN,
) -> str:
    """One failure; callers that know their schema's shape may pass the paths
    (e.g. ``"['properties']['total']"``) that default to the error's ``loc``,
    and the reference's (sub)schema there, which its validator prints."""
    keyword, message = _describe(error)
    path = "".join(f"[{part!r}]" for part in error["loc"] if part != "__root__")
    shown = "" if schema is _UNKNOWN else f"{pretty(schema)}\n"
    return (
        f"{message}\n\nFailed validating {keyword!r} in schema"
        f"{path if schema_path is None else schema_path}:\n{shown}\n"
        f"On instance{path if instance_path is None else instance_path}:\n"
        f"{pretty(error.get('input'))}"
    )


# A model may carry the reference's JSON schema of its body (``REFERENCE_SCHEMA``),
# which the reference's validator prints in part in every failure.
SCHEMA_ATTRIBUTE = "REFERENCE_SCHEMA"
_OBJECT_LEVEL = {"missing": 0, "extra_forbidden": 1}


def _ordered(part: str | int) -> tuple[int, str | int]:
    return (0, part) if isinstance(part, int) else (1, part)


def _with_schema(errors: list[ErrorDetails], schema: dict[str, Any], data: Any) -> str:
    """The failure the reference's validator reports (its best match: an
    object-level ``required`` or ``additionalProperties`` before a property's),
    with the (sub)schema and instance it prints."""
    top = [e for e in errors if e["type"] in _OBJECT_LEVEL]
    if top:
        error = min(top, key=lambda e: _OBJECT_LEVEL[e["type"]])
    else:  # the shallowest, and among siblings the greatest path
        depth = min(len(e["loc"]) for e in errors)
        error = max((e for e in errors if len(e["loc"]) == depth),
                    key=lambda e: tuple(_ordered(part) for part in e["loc"]))
    loc = tuple(part for part in error["loc"] if part != "__root__")
    if error["type"] in _OBJECT_LEVEL:
        keyword, message = _describe(error)
        return (f"{message}\n\nFailed validating {keyword!r} in schema:\n{pretty(schema)}"
                f"\n\nOn instance:\n{pretty(data)}")
    keys: list[str | int] = []
    node: Any = schema
    for part in loc:
        step = ["items"] if isinstance(part, int) else ["properties", str(part)]
        if not isinstance(node, dict) or step[0] not in node:
            break
        keys.extend(step)
        node = node[step[0]] if isinstance(part, int) else node["properties"].get(part, {})
    return describe_error(
        error, schema_path="".join(f"[{key!r}]" for key in keys),
        instance_path="".join(f"[{part!r}]" for part in loc), schema=node,
    )


def validate(data: Any, model: type[ModelT]) -> ModelT:
    """``data`` as ``model``; a failure is the reference's 400 "JSON does not validate"."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        schema = getattr(model, SCHEMA_ATTRIBUTE, None)
        text = (
            _with_schema(exc.errors(include_url=False), schema, data) if schema
            else describe_validation_error(exc)
        )
        raise InvalidInput(f"JSON does not validate: {text}") from None
