"""Inventory bodies: ``POST``/``PUT`` on ``.../inventories`` and ``.../inventories/{rc}``.

The reference validates these with JSON Schema; the failure it reports is the
validator's "best match" (the shallowest error; among siblings the greatest
instance path; then ``required`` before ``additionalProperties``), with the
schema path spelled out (``schema['properties']['total']``). ``parse_*``
below reproduce that choice and wording.

Integers follow JSON Schema, not Python: booleans are not integers, floats
with an integral value are. Values are kept as sent so that write responses
echo them (``"allocation_ratio": 16`` stays ``16``).
"""

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails

from app.exceptions import InvalidInput
from app.records import MAX_INT, InventoryRecord
from app.schemas.validation import describe_error, schema_error
from app.schemas.versioned import OPTIONAL_FIELD

RC_PATTERN = r"^[A-Z0-9_]+$"
FLOAT_MAX = 3.40282e38
_RC_RE = re.compile(RC_PATTERN)

Number = int | float
ModelT = TypeVar("ModelT", bound="_InventoryBase")


def matches_rc_pattern(name: str) -> bool:
    """JSON Schema's ``pattern``/``patternProperties`` test (``re.search``)."""
    return _RC_RE.search(name) is not None


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _bounded(
    type_name: str, minimum: Number | None, maximum: Number | None
) -> Callable[[object], Number]:
    def check(value: object) -> Number:
        if type_name == "integer":
            ok = _is_integer(value)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise schema_error("type", f"{value!r} is not of type {type_name!r}")
        number: Number = value  # type: ignore[assignment]
        if minimum is not None and number < minimum:
            raise schema_error("minimum", f"{value!r} is less than the minimum of {minimum!r}")
        if maximum is not None and number > maximum:
            raise schema_error(
                "maximum", f"{value!r} is greater than the maximum of {maximum!r}"
            )
        return number

    return check


def _resource_class(value: object) -> str:
    if not isinstance(value, str):
        raise schema_error("type", f"{value!r} is not of type 'string'")
    if not matches_rc_pattern(value):
        raise schema_error("pattern", f"{value!r} does not match {RC_PATTERN!r}")
    return value


def _integer(minimum: int | None = None) -> WithJsonSchema:
    """What the documents show of a checked integer (the checks are the validators)."""
    bounds = {} if minimum is None else {"minimum": minimum, "maximum": MAX_INT}
    return WithJsonSchema({"type": "integer", **bounds})


Integer = Annotated[Number, PlainValidator(_bounded("integer", None, None)), _integer()]
OptionalInteger = Annotated[
    Number | None,
    PlainValidator(_bounded("integer", None, None)),
    WithJsonSchema({"type": ["integer", "null"]}),
]
Total = Annotated[Number, PlainValidator(_bounded("integer", 1, MAX_INT)), _integer(1)]
Reserved = Annotated[Number, PlainValidator(_bounded("integer", 0, MAX_INT)), _integer(0)]
Unit = Annotated[Number, PlainValidator(_bounded("integer", 1, MAX_INT)), _integer(1)]
Ratio = Annotated[
    Number,
    PlainValidator(_bounded("number", None, FLOAT_MAX)),
    WithJsonSchema({"type": "number", "maximum": FLOAT_MAX}),
]
ResourceClassName = Annotated[
    str, PlainValidator(_resource_class), WithJsonSchema({"type": "string", "pattern": RC_PATTERN})
]


class _InventoryBase(BaseModel):
    """The fields every inventory body may carry, in the reference schema's order."""

    model_config = ConfigDict(extra="forbid")
    REQUIRED: ClassVar[tuple[str, ...]] = ("total",)
    REFERENCE_SCHEMA: ClassVar[dict[str, object]] = {}

    resource_provider_generation: OptionalInteger = None
    total: Total
    reserved: Reserved = 0
    min_unit: Unit = 1
    max_unit: Unit = MAX_INT
    step_size: Unit = 1
    allocation_ratio: Ratio = 1.0

    def record(self) -> InventoryRecord:
        """What gets stored (integers as ``int``).

        A capacity beyond float range (``allocation_ratio`` near the float
        limits) is refused: the reference answers 500 for it, and stored it
        would break every answer that computes it.
        """
        if not math.isfinite((self.total - self.reserved) * self.allocation_ratio):
            raise InvalidInput(
                "JSON does not validate: the capacity (total - reserved) * allocation_ratio "
                f"is out of range for allocation_ratio {self.allocation_ratio!r}"
            )
        return InventoryRecord(
            total=int(self.total),
            reserved=int(self.reserved),
            min_unit=int(self.min_unit),
            max_unit=int(self.max_unit),
            step_size=int(self.step_size),
            allocation_ratio=self.allocation_ratio,
        )

    def echo(self) -> dict[str, Number]:
        """The six fields as sent, defaults filled in (write responses)."""
        return {
            "total": self.total,
            "reserved": self.reserved,
            "min_unit": self.min_unit,
            "max_unit": self.max_unit,
            "step_size": self.step_size,
            "allocation_ratio": self.allocation_ratio,
        }


class InventoryCreate(_InventoryBase):
    """``POST .../inventories``: ``resource_class`` required; generation ignored."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("total", "resource_class")
    REFERENCE_SCHEMA: ClassVar[dict[str, object]] = {}  # set below the schemas

    resource_class: ResourceClassName


class InventoryUpdate(_InventoryBase):
    """``PUT .../inventories/{rc}``: generation required, no ``resource_class``."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("total", "resource_provider_generation")
    REFERENCE_SCHEMA: ClassVar[dict[str, object]] = {}  # set below the schemas

    resource_provider_generation: Integer


class InventoryPutRecord(_InventoryBase):
    """One record of ``PUT .../inventories`` (a generation in it is ignored)."""


class InventoriesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    REQUIRED: ClassVar[tuple[str, ...]] = ("resource_provider_generation", "inventories")

    resource_provider_generation: Integer
    # Checked record by record (parse_inventories); documented as the records.
    inventories: Annotated[
        dict[str, Any],
        WithJsonSchema({
            "type": "object",
            "description": "Resource class name -> inventory.",
            "propertyNames": {"pattern": RC_PATTERN},
            "additionalProperties": InventoryPutRecord.model_json_schema(),
        }),
    ]


class InventoriesPut:
    """``PUT .../inventories``: the generation and the class -> record map.

    Keys that do not match ``^[A-Z0-9_]+$`` are not schema-checked (as in the
    reference); they are kept as placeholder records so that they fail later,
    in request order, as unknown resource classes.
    """

    def __init__(self, generation: int, records: dict[str, _InventoryBase | None]) -> None:
        self.resource_provider_generation = generation
        self.inventories = records

    def records(self) -> dict[str, InventoryRecord]:
        return {
            name: body.record() if body is not None else InventoryRecord(total=1)
            for name, body in self.inventories.items()
        }

    def echo(self) -> dict[str, dict[str, Number]]:
        return {
            name: body.echo() for name, body in self.inventories.items() if body is not None
        }


# ----------------------------------------------------------- representations


class InventoryOut(BaseModel):
    """Documentation model of one inventory (the generation on writes and shows)."""

    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    resource_provider_generation: int = Field(json_schema_extra=OPTIONAL_FIELD)


class InventoriesOut(BaseModel):
    resource_provider_generation: int
    inventories: dict[str, InventoryOut]


# ------------------------------------------------------------------ parsing

_RECORD_SCHEMA_PATH = (
    "['properties']['inventories']['patternProperties'][" + repr(RC_PATTERN) + "]"
)
_RECORD_KEYS = ("properties", "inventories", "patternProperties", RC_PATTERN)


def _bounds(minimum: int) -> dict[str, object]:
    return {"type": "integer", "maximum": MAX_INT, "minimum": minimum}


# The reference's JSON schemas of the three bodies (its 400s print parts of them).
_FIELDS: dict[str, object] = {
    "resource_provider_generation": {"type": "integer"},
    "total": _bounds(1),
    "reserved": _bounds(0),
    "min_unit": _bounds(1),
    "max_unit": _bounds(1),
    "step_size": _bounds(1),
    "allocation_ratio": {"type": "number", "maximum": FLOAT_MAX},
}
CREATE_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {**_FIELDS, "resource_class": {"type": "string", "pattern": RC_PATTERN}},
    "required": ["total", "resource_class"],
    "additionalProperties": False,
}
UPDATE_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": _FIELDS,
    "required": ["total", "resource_provider_generation"],
    "additionalProperties": False,
}
PUT_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "resource_provider_generation": {"type": "integer"},
        "inventories": {
            "type": "object",
            "patternProperties": {RC_PATTERN: {
                "type": "object", "properties": _FIELDS, "required": ["total"],
                "additionalProperties": False,
            }},
        },
    },
    "required": ["resource_provider_generation", "inventories"],
    "additionalProperties": False,
}


InventoryCreate.REFERENCE_SCHEMA = CREATE_SCHEMA
InventoryUpdate.REFERENCE_SCHEMA = UPDATE_SCHEMA


# Provider keys of a reshaper body's inventories.
RESHAPER_PROVIDER_PATTERN = r"^[0-9a-fA-F-]{36}$"


def _nest(keys: tuple[str, ...], schema: object) -> object:
    """``schema`` placed at ``keys`` of an otherwise empty schema (for walking)."""
    for key in reversed(keys):
        schema = {key: schema}
    return schema


def _walk(schema: object, keys: tuple[str, ...]) -> object:
    for key in keys:
        if not isinstance(schema, dict) or key not in schema:
            return {}
        schema = schema[key]
    return schema


class _Failure:
    """One pydantic error, placed in the reference schema's terms."""

    def __init__(
        self, error: ErrorDetails, required: tuple[str, ...], schema_prefix: str,
        base: tuple[str, ...] = (), schema: object = None, prefix_keys: tuple[str, ...] = (),
        instance: object = None,
    ) -> None:
        error["loc"] = base + tuple(error["loc"])
        if error["type"] == "extra_forbidden" and instance is not None:
            error["input"] = instance  # the validator shows the whole object
        self.error = error
        self.kind = error["type"]
        loc = tuple(str(part) for part in error["loc"])
        sub_object = self.kind in ("missing", "extra_forbidden")
        # JSON Schema reports required/additionalProperties at the object.
        self.path = loc[:-1] if sub_object else loc
        relative = loc[len(base):]
        self.schema = _walk(schema, prefix_keys)
        if self.kind == "missing":
            self.schema_path = schema_prefix
            name = relative[-1]
            self.rank = required.index(name) if name in required else len(required)
        elif self.kind == "extra_forbidden":
            self.schema_path = schema_prefix
            self.rank = len(required) + 1
        else:
            self.schema_path = schema_prefix + (
                f"['properties'][{relative[0]!r}]" if relative else ""
            )
            if relative:
                self.schema = _walk(self.schema, ("properties", relative[0]))
            self.rank = 0

    @property
    def relevance(self) -> tuple[int, tuple[str, ...]]:
        # best_match: shallowest first, then the greatest path among siblings.
        return -len(self.path), self.path

    def render(self) -> str:
        instance = "".join(f"[{part!r}]" for part in self.path)
        message = describe_error(self.error, schema_path=self.schema_path,
                                 instance_path=instance, schema=self.schema)
        return f"JSON does not validate: {message}"


def _best(failures: list[_Failure]) -> InvalidInput:
    top = max(failure.relevance for failure in failures)
    best = min(
        (failure for failure in failures if failure.relevance == top),
        key=lambda failure: failure.rank,
    )
    return InvalidInput(best.render())


def parse_inventory(data: Any, model: type[ModelT]) -> ModelT:
    """Validate a single-inventory body (``InventoryCreate``/``InventoryUpdate``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _best([
            _Failure(error, model.REQUIRED, "", schema=model.REFERENCE_SCHEMA, instance=data)
            for error in exc.errors(include_url=False)
        ]) from None


def parse_inventories(data: Any, within: str | None = None) -> InventoriesPut:
    """Validate a ``PUT .../inventories`` body, or the one of provider ``within``
    a reshaper body (paths then start at the reshaper's schema)."""
    prefix = ""
    keys: tuple[str, ...] = ()
    base: tuple[str, ...] = ()
    if within is not None:
        pattern = RESHAPER_PROVIDER_PATTERN
        prefix = f"['properties']['inventories']['patternProperties'][{pattern!r}]"
        keys, base = ("properties", "inventories", "patternProperties", pattern), (
            "inventories", within)
    try:
        outer = InventoriesBody.model_validate(data)
    except ValidationError as exc:
        raise _best(
            [
                _Failure(error, InventoriesBody.REQUIRED, prefix, base,
                         schema=_nest(keys, PUT_SCHEMA), prefix_keys=keys, instance=data)
                for error in exc.errors(include_url=False)
            ]
        ) from None
    records: dict[str, _InventoryBase | None] = {}
    failures: list[_Failure] = []
    for name, raw in outer.inventories.items():
        if not matches_rc_pattern(name):
            records[name] = None
            continue
        try:
            records[name] = InventoryPutRecord.model_validate(raw)
        except ValidationError as exc:
            failures.extend(
                _Failure(error, InventoryPutRecord.REQUIRED, prefix + _RECORD_SCHEMA_PATH,
                         (*base, "inventories", name), _nest(keys, PUT_SCHEMA),
                         keys + _RECORD_KEYS, raw)
                for error in exc.errors(include_url=False)
            )
    if failures:
        raise _best(failures)
    return InventoriesPut(int(outer.resource_provider_generation), records)
