"""Render pydantic validation failures in the words of JSON Schema validators.

The reference validates bodies with JSON Schema, and clients and the
reference's own tests match on those messages ("'x' is a required property",
"Failed validating 'maximum'"). Models here raise the same wording.
"""

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from app.exceptions import InvalidInput
from app.query import pretty

ModelT = TypeVar("ModelT", bound=BaseModel)

# Custom error type for messages written in validators (ctx: keyword, message).
SCHEMA_ERROR = "json_schema"


def schema_error(
    keyword: str, message: str, at: tuple[str | int, ...] = ()
) -> PydanticCustomError:
    """An error a validator raises with a ready JSON Schema message; a validator of
    a whole container says ``at`` which member inside it the failure lies, since the
    reference's validator reports (and prints the subschema of) that member."""
    ctx: dict[str, Any] = {"keyword": keyword, "message": message}
    if at:
        ctx["at"] = at
    return PydanticCustomError(SCHEMA_ERROR, "{message}", ctx)


# Echoed strings are cut to this many characters before they are printed: more
# than the detail keeps (``app.api.errors.MAX_MESSAGE``, 16 KB), so the answer is
# the same, without repr and pprint of megabytes on the event loop.
ECHO_LIMIT = 20_000


def _cut(text: str) -> str:
    """``text`` shortened so its repr starts as the whole text's repr does
    (repr picks its quote by the quotes the whole text holds)."""
    rest = text[ECHO_LIMIT:]
    return text[:ECHO_LIMIT] + "".join(quote for quote in "'\"" if quote in rest)


def shortened(value: Any) -> Any:
    """``value`` with every string longer than ``ECHO_LIMIT`` cut (a copy when one is)."""
    if isinstance(value, str):
        return _cut(value) if len(value) > ECHO_LIMIT else value
    if isinstance(value, dict):
        return {key: shortened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shortened(item) for item in value]
    return value


def _full_loc(error: ErrorDetails) -> tuple[str | int, ...]:
    """The error's location, down to the member a container's validator named."""
    at = (error.get("ctx") or {}).get("at", ()) if error["type"] == SCHEMA_ERROR else ()
    return tuple(error["loc"]) + tuple(at)


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


def _too_short(value: Any, minimum: object) -> str:
    # The validator's wording for an empty value where one item is the minimum.
    if minimum == 1 and not value:
        return f"{value!r} should be non-empty"
    return f"{value!r} is too short"


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
        return "minLength", _too_short(value, ctx.get("min_length"))
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return "minimum", f"{value!r} is less than the minimum of {bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return "maximum", f"{value!r} is greater than the maximum of {bound}"
    if kind == "too_short":
        if isinstance(value, dict):
            return "minProperties", (
                f"{value!r} should be non-empty" if ctx.get("min_length") == 1 and not value
                else f"{value!r} does not have enough properties"
            )
        return "minItems", _too_short(value, ctx.get("min_length"))
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
_OBJECT_LEVEL = ("missing", "extra_forbidden")


def _ordered(part: str | int) -> tuple[int, str | int]:
    return (0, part) if isinstance(part, int) else (1, part)


def _step(node: Any, part: str | int) -> tuple[list[str], Any] | None:
    """The schema keys from ``node`` to the schema of its member ``part``."""
    if not isinstance(node, dict):
        return None
    if isinstance(part, int):
        return (["items"], node["items"]) if "items" in node else None
    if part in node.get("properties", {}):
        return ["properties", part], node["properties"][part]
    for pattern, sub in node.get("patternProperties", {}).items():
        if re.search(pattern, part):
            return ["patternProperties", pattern], sub
    extra = node.get("additionalProperties")
    return (["additionalProperties"], extra) if isinstance(extra, dict) else None


def _locate(schema: Any, data: Any, loc: tuple[str | int, ...]) -> tuple[str, Any, Any]:
    """The printed schema path, the subschema and the instance at ``loc``."""
    keys: list[str] = []
    node, instance = schema, data
    for part in loc:
        found = _step(node, part)
        if found is None:
            break
        keys.extend(found[0])
        node = found[1]
        try:
            instance = instance[part]
        except (KeyError, IndexError, TypeError):
            break
    return "".join(f"[{key!r}]" for key in keys), node, instance


def _with_schema(errors: list[ErrorDetails], schema: dict[str, Any], data: Any) -> str:
    """The failure the reference's validator reports (its best match: the
    shallowest; among siblings the greatest path; ``required`` before
    ``additionalProperties``), with the (sub)schema and instance it prints."""
    def where(error: ErrorDetails) -> tuple[str | int, ...]:
        loc = tuple(part for part in error["loc"] if part != "__root__")
        # required/additionalProperties fail at the object holding the key.
        return loc[:-1] if error["type"] in _OBJECT_LEVEL else loc

    depth = min(len(where(e)) for e in errors)
    shallow = [e for e in errors if len(where(e)) == depth]
    path = max(tuple(_ordered(part) for part in where(e)) for e in shallow)
    siblings = [e for e in shallow if tuple(_ordered(part) for part in where(e)) == path]
    loc = where(siblings[0])
    schema_path, node, instance = _locate(schema, data, loc)
    instance = shortened(instance)
    # At one object the validator meets its keywords in the schema's order.
    order = list(node) if isinstance(node, dict) else []
    error = min(siblings, key=lambda e: order.index(_describe(e)[0])
                if _describe(e)[0] in order else len(order))
    keyword, message = _describe(error)
    return (
        f"{message}\n\nFailed validating {keyword!r} in schema{schema_path}:\n"
        f"{pretty(node)}\n\nOn instance{''.join(f'[{part!r}]' for part in loc)}:\n"
        f"{pretty(instance)}"
    )


def _with_short_input(error: ErrorDetails) -> ErrorDetails:
    if "input" in error:
        error["input"] = shortened(error["input"])
    return error


def validate(
    data: Any, model: type[ModelT], *, schema: dict[str, Any] | None = None,
    root: Any = None, within: tuple[str, ...] = (),
) -> ModelT:
    """``data`` as ``model``; a failure is the reference's 400 "JSON does not validate".

    ``schema`` (else the model's ``REFERENCE_SCHEMA``) is what the reference's
    validator prints; a part of a larger body is validated ``within`` it at
    that path of ``root``, the whole body."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        schema = schema or getattr(model, SCHEMA_ATTRIBUTE, None)
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = within + _full_loc(error)
            _with_short_input(error)
        text = (
            _with_schema(errors, schema, root if within else data) if schema
            else describe_error(_with_short_input(exc.errors(include_url=False)[0]))
        )
        raise InvalidInput(f"JSON does not validate: {text}") from None
