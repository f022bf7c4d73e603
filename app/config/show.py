"""``placement-manage config show``: the effective settings, secrets masked."""

import os
from typing import Any

from pydantic import SecretStr

from app.config.placement_conf import config_files, read
from app.db.urls import mask
from app.settings import Settings


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _shown(name: str, value: Any) -> str:
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else "(unset)"
    if name in ("database_url", "database_read_url"):
        return mask(str(value))
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "(unset)" if value is None else str(value)


def lines(settings: Settings) -> list[str]:
    """One ``name = value  # source`` line per setting."""
    files = config_files()
    from_file = _flatten(read(files)) if files else {}
    shown = [f"# placement.conf: {', '.join(map(str, files)) or 'none found'}"]
    values = {**dict(settings), "keystone": dict(settings.keystone)}
    values.pop("config_files")  # the header line says it
    for name, value in _flatten(values).items():
        variable = "PLACEMENT_" + name.upper().replace(".", "__")
        if variable in os.environ:
            source = variable
        elif name in from_file:
            source = "placement.conf"
        else:
            source = "default"
        shown.append(f"{name} = {_shown(name, value)}  # {source}")
    return shown
