"""``PLACEMENT_*`` environment variables as settings values.

A setting ``x`` is ``PLACEMENT_X``; a field of a nested settings model takes
``__`` (``PLACEMENT_KEYSTONE__AUTH_URL``), or the whole model one JSON object
(``PLACEMENT_KEYSTONE``). Names are matched without regard to case; variables
that name no setting are ignored. Values stay strings: the settings model
converts them (``"true"``, ``"10"``, a comma list) as it does the file's.
"""

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from app.config.placement_conf import ConfigError

PREFIX = "placement_"
NESTED = "__"


def values(model: type[BaseModel], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the environment sets of ``model``'s fields, nested as the model takes them."""
    env = os.environ if environ is None else environ
    named = {name.lower(): value for name, value in env.items()
             if name.lower().startswith(PREFIX)}
    return _fields(model, PREFIX, named)


def _fields(model: type[BaseModel], prefix: str, named: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        variable = prefix + name
        annotation = field.annotation
        nested = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
            else None
        if variable in named:
            found[name] = _json(variable, named[variable]) if nested else named[variable]
        if nested is not None:
            inner = _fields(nested, variable + NESTED, named)
            if inner:
                whole = found.get(name)
                found[name] = merged(whole, inner) if isinstance(whole, dict) else inner
    return found


def _json(variable: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigError(f"{variable.upper()} is not JSON (a whole nested setting is one "
                          "JSON object)") from None


def merged(weaker: dict[str, Any], stronger: dict[str, Any]) -> dict[str, Any]:
    """``stronger`` over ``weaker``, nested dicts merged key by key."""
    out = dict(weaker)
    for key, value in stronger.items():
        below = out.get(key)
        both_dicts = isinstance(below, dict) and isinstance(value, dict)
        out[key] = merged(below, value) if both_dicts else value  # type: ignore[arg-type]
    return out
