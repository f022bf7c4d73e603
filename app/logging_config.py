"""Logging set-up: one JSON object per line (or plain text), for uvicorn and the app.

``placement-api`` hands :func:`logging_config` to uvicorn (``log_config``), so
every worker process logs the same way. ``uvicorn app.main:app`` keeps
uvicorn's own configuration unless given ``--log-config``; the access log
of :mod:`app.observability` is then silent (logger ``app.access`` has no handler at INFO).

Environment: ``PLACEMENT_LOG_FORMAT`` (``json``, the default, or ``text``) and
``PLACEMENT_LOG_LEVEL`` (``INFO``).
"""

import logging
import os
from datetime import UTC, datetime
from typing import Any

import orjson

from app.observability.log_safety import escape_control, hide_sql, safe_message, safe_traceback


def _debugging() -> bool:
    """SQL statements and parameters are shown only when the root logs at DEBUG."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)

# Attributes every LogRecord has; anything else on a record came in ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": safe_message(record.getMessage(), debug=_debugging()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            text = self.formatException(record.exc_info)
            entry["exc_info"] = text if _debugging() else hide_sql(text)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """Plain lines; request fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # Client input (paths, names) must not break or forge lines.
        debug = _debugging()
        record.message = escape_control(safe_message(record.getMessage(), debug=debug))
        record.asctime = self.formatTime(record, self.datefmt)
        line = escape_control(self.formatMessage(record))
        if record.exc_info:
            line += "\n\t" + safe_traceback(self.formatException(record.exc_info), debug=debug)
        extra = [
            f"{key}={escape_control(str(value))}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        ]
        return f"{line} {' '.join(extra)}" if extra else line


def logging_config(fmt: str | None = None, level: str | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary (uvicorn's ``log_config``)."""
    fmt = (fmt or os.environ.get("PLACEMENT_LOG_FORMAT") or "json").lower()
    level = (level or os.environ.get("PLACEMENT_LOG_LEVEL") or "INFO").upper()
    formatter = "app.logging_config.TextFormatter" if fmt == "text" else (
        "app.logging_config.JsonFormatter"
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Propagate to the root handler; uvicorn's own access log is replaced
            # by app.access (it knows the route, user and microversion).
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
