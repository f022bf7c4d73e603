"""Database URLs as operators write them, turned into the async drivers the service uses.

``placement.conf`` names synchronous drivers (``postgresql+psycopg2://``,
``mysql+pymysql://``, ``sqlite:///``); the service runs on asyncio, so each
synchronous form maps to its async counterpart. URLs that already name an
async driver are kept as they are.
"""

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# The async driver used when a URL names a synchronous one (or none).
ASYNC_DRIVERS = {
    "postgresql": "asyncpg",
    "mysql": "asyncmy",
    "mariadb": "asyncmy",
    "sqlite": "aiosqlite",
}
KNOWN_ASYNC = {"asyncpg", "psycopg_async", "asyncmy", "aiomysql", "aiosqlite"}
_BACKEND_ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}


class BadDatabaseURL(ValueError):
    """The URL cannot be parsed or names a database the service does not support."""


def parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise BadDatabaseURL(f"cannot parse database URL {mask(url)!r}: {exc}") from exc
    backend = _BACKEND_ALIASES.get(parsed.get_backend_name(), parsed.get_backend_name())
    if backend not in ASYNC_DRIVERS:
        raise BadDatabaseURL(
            f"unsupported database {parsed.get_backend_name()!r} in {mask(url)!r} "
            "(use postgresql, mysql or sqlite)"
        )
    return parsed


def async_url(url: str) -> str:
    """``url`` with an async driver; raises :class:`BadDatabaseURL`."""
    parsed = parse(url)
    backend = _BACKEND_ALIASES.get(parsed.get_backend_name(), parsed.get_backend_name())
    driver = parsed.drivername.partition("+")[2]
    if driver not in KNOWN_ASYNC:
        driver = ASYNC_DRIVERS[backend]
    return parsed.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


def mask(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"
