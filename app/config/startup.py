"""Start-up checks that end in one or two lines, not a traceback.

Bad settings, a database URL that cannot be used, a database that cannot be
reached, does not exist or refuses the credentials, a noauth2 server on a
non-loopback address: each becomes :class:`StartupError` -- a problem line
(passwords masked) and a hint -- which :func:`reported` prints before exiting
non-zero. The traceback is printed only at debug level.
"""

import asyncio
import ipaddress
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config.placement_conf import ConfigError, source_of
from app.db.engine import make_engine
from app.db.urls import BadDatabaseURL, mask, parse
from app.settings import Settings, get_settings

CONNECT_TIMEOUT = 10.0
DATABASE_HINT = "check [placement_database] connection in placement.conf, or PLACEMENT_DATABASE_URL"


class StartupError(Exception):
    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


@contextmanager
def reported(prog: str, *, debug: bool = False) -> Iterator[None]:
    """Turn start-up failures into ``prog: problem`` + ``hint: ...`` and exit 1."""
    try:
        yield
    except (StartupError, ConfigError, ValidationError, BadDatabaseURL) as exc:
        error = as_startup_error(exc)
        if debug:
            traceback.print_exc()
        print(f"{prog}: {error.problem}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        raise SystemExit(1) from None


def as_startup_error(exc: Exception) -> StartupError:
    if isinstance(exc, StartupError):
        return exc
    if isinstance(exc, ConfigError):
        return StartupError(f"bad configuration: {exc}",
                            "see the README's placement.conf section for the options read")
    if isinstance(exc, BadDatabaseURL):
        return StartupError(f"bad database URL: {exc}", DATABASE_HINT)
    assert isinstance(exc, ValidationError)
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"])
    value = first.get("input")
    shown = "***" if "password" in name or name in ("database_url", "database_read_url") \
        else repr(value)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return StartupError(f"bad setting {name} = {shown}: {first['msg']}{more}",
                        f"set {source_of(name)}")


def load_settings() -> Settings:
    """The effective settings; failures as :class:`StartupError`."""
    get_settings.cache_clear()
    try:
        settings = get_settings()
    except (ConfigError, ValidationError) as exc:
        raise as_startup_error(exc) from exc
    return settings


def check_keystone(settings: Settings) -> None:
    if settings.auth_strategy != "keystone":
        return
    missing = [name for name in ("auth_url", "username", "project_name")
               if not getattr(settings.keystone, name)]
    if settings.keystone.system_scope and "project_name" in missing:
        missing.remove("project_name")
    if missing or not settings.keystone.password.get_secret_value():
        names = ", ".join([*missing, *([] if settings.keystone.password.get_secret_value()
                                       else ["password"])])
        raise StartupError(
            f"auth_strategy is keystone but [keystone_authtoken] lacks {names}",
            "set them in placement.conf (or PLACEMENT_KEYSTONE__<OPTION>), "
            "or use auth_strategy = noauth2 for a loopback-only test server",
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen_address(host: str, settings: Settings) -> None:
    """noauth2 believes any token: loopback only unless explicitly allowed."""
    if settings.auth_strategy == "noauth2" and not is_loopback(host) \
            and not settings.allow_remote_noauth2:
        raise StartupError(
            f"refusing to listen on {host} with auth_strategy noauth2 "
            "(anyone who reaches the port is admin)",
            "use auth_strategy = keystone, listen on 127.0.0.1, or set "
            "[api] allow_remote_noauth2 = true (PLACEMENT_ALLOW_REMOTE_NOAUTH2=true)",
        )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (
            current.__cause__ or current.__context__)


def database_error(url: str, exc: BaseException) -> StartupError:
    """What went wrong connecting to ``url``, in one line and a hint."""
    where = mask(url)
    for cause in _causes(exc):
        name = type(cause).__name__
        message = str(cause).strip().splitlines()[0] if str(cause).strip() else name
        if name == "InvalidCatalogNameError" or "Unknown database" in message \
                or "unable to open database file" in message:
            return StartupError(
                f"database {where} does not exist: {message}",
                "create it (CREATE DATABASE ...; for SQLite, its directory), then run "
                "placement-manage db sync",
            )
        if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError") \
                or "Access denied" in message or "password authentication failed" in message:
            return StartupError(f"database {where} refused the credentials: {message}",
                                DATABASE_HINT)
        if isinstance(cause, (OSError, TimeoutError)):
            return StartupError(f"cannot reach the database at {where}: {message}",
                                f"is the database server running? {DATABASE_HINT}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StartupError(f"cannot use the database {where}: {first}", DATABASE_HINT)


async def _probe(engine: AsyncEngine) -> None:
    async with asyncio.timeout(CONNECT_TIMEOUT), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def check_database(settings: Settings) -> None:
    """Connect once (and dispose): the database exists and answers."""
    url = settings.database_url
    try:
        parse(url)
    except BadDatabaseURL as exc:
        raise as_startup_error(exc) from exc
    if url.startswith("sqlite") and ":memory:" not in url:
        _check_sqlite_directory(url)
    try:
        engine = make_engine(url)
    except ModuleNotFoundError as exc:
        raise StartupError(
            f"the database driver {exc.name} for {mask(url)} is not installed",
            f"pip install {exc.name}, or use a database this installation supports",
        ) from exc
    except Exception as exc:  # bad query options
        raise StartupError(f"bad database URL {mask(url)}: {exc}", DATABASE_HINT) from exc
    try:
        await _probe(engine)
    except Exception as exc:
        raise database_error(url, exc) from exc
    finally:
        await engine.dispose()


def _check_sqlite_directory(url: str) -> None:
    database = parse(url).database
    if database and not Path(database).parent.exists():
        raise StartupError(
            f"database {mask(url)} does not exist: no directory {Path(database).parent}",
            "create the directory (SQLite creates the file), then run placement-manage db sync",
        )
