"""What log lines may carry of a request (issue 12).

* Control characters (``\\n``, ``\\r``, ESC, ...) in anything that can come
  from a client are escaped, so ``%0a`` in a path cannot forge a line of a
  text log, nor ESC sequences drive a terminal.
* SQL statements and their parameters (SQLAlchemy puts both in its error
  messages: whole bodies, hundreds of KB) appear only at debug level.
* A message is cut at ``MAX_MESSAGE`` characters.
"""

import re

MAX_MESSAGE = 8 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f]")
# SQLAlchemy's "[SQL: ...]" and "[parameters: ...]" sections, up to the
# "(Background on this error ...)" line or the end of the text.
_SQL = re.compile(r"\[SQL: .*?(?=\n\(Background on this error|\Z)", re.DOTALL)
SQL_HIDDEN = "[SQL and parameters are logged at debug level]"


def escape_control(text: str) -> str:
    """``\\n`` -> ``\\\\n`` and every other control character as ``\\\\xNN``."""
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}")


def hide_sql(text: str) -> str:
    return _SQL.sub(SQL_HIDDEN, text) if "[SQL: " in text else text


def truncate(text: str, limit: int = MAX_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def safe_message(text: str, *, debug: bool) -> str:
    """One log message as it may be written: SQL hidden unless debugging, cut."""
    return truncate(text if debug else hide_sql(text))


def safe_traceback(text: str, *, debug: bool) -> str:
    """A traceback keeps its lines, each continuation indented so that none can
    pass for a log line of its own; control characters other than newlines
    are escaped."""
    text = text if debug else hide_sql(text)
    lines = [escape_control(line) for line in text.splitlines()]
    return "\n\t".join(lines)
