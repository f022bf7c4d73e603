"""Console scripts: ``placement-api`` (serve) and ``placement-manage``.

Both read placement.conf as the reference does (``--config-file``, else
``$OS_PLACEMENT_CONFIG_DIR/placement.conf``, else ``/etc/placement/placement.conf``
and oslo.config's other default places); ``PLACEMENT_*`` variables win. A
configuration that cannot work ends in one or two lines and exit status 1
(``app/config/startup.py``); the traceback only with ``--debug``.
"""

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import show
from app.config.placement_conf import CONFIG_FILE_VARIABLE
from app.config.startup import (
    StartupError,
    check_database,
    check_keystone,
    check_listen_address,
    database_error,
    load_settings,
    reported,
)
from app.db.engine import make_engine
from app.db.urls import mask
from app.logging_config import logging_config
from app.settings import Settings


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _prepare_multiprocess_metrics(workers: int) -> None:
    """Several workers share their metrics through files (prometheus-client)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers <= 1 and not directory:
        return
    if not directory:
        directory = tempfile.mkdtemp(prefix="placement-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.makedirs(directory, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-file", action="append", default=[], metavar="PATH",
        help="placement.conf to read (repeatable; default: as the reference finds it)",
    )
    parser.add_argument("--debug", action="store_true",
                        help="tracebacks for start-up errors")


def _use_config_files(files: list[str]) -> None:
    # The variable carries them to the server's workers (they import app.main).
    if files:
        os.environ[CONFIG_FILE_VARIABLE] = os.pathsep.join(
            str(Path(name).resolve()) for name in files)


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="placement-api", description="Serve the Placement API.")
    parser.add_argument(
        "--host", default=os.environ.get("PLACEMENT_HOST"),
        help="address to listen on (default: 127.0.0.1 with noauth2, 0.0.0.0 with keystone)",
    )
    parser.add_argument("--port", type=int, default=_env_int("PLACEMENT_PORT", 8778))
    parser.add_argument("--workers", type=int, default=_env_int("PLACEMENT_WORKERS", 1))
    parser.add_argument(
        "--root-path",
        default=os.environ.get("PLACEMENT_ROOT_PATH", ""),
        help="path prefix the service is mounted under, e.g. /placement (links carry it)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get("FORWARDED_ALLOW_IPS"),
        help="proxies trusted for X-Forwarded-Proto/-For (comma list, '*' = any; "
             "default: the trusted_proxies setting, loopback)",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=int,
        default=_env_int("PLACEMENT_GRACEFUL_TIMEOUT", 30),
        help="seconds to let requests in flight finish after SIGTERM",
    )
    parser.add_argument(
        "--worker-healthcheck-timeout",
        type=int,
        default=_env_int("PLACEMENT_WORKER_HEALTHCHECK_TIMEOUT", 120),
        help="seconds a worker may take to answer the supervisor's health check before "
             "it is restarted (uvicorn's 5 s killed starting workers under CPU load)",
    )
    parser.add_argument(
        "--keep-alive-timeout",
        type=int,
        default=_env_int("PLACEMENT_KEEP_ALIVE_TIMEOUT", 75),
        help="seconds an idle kept-alive connection stays open (uvicorn's default, 5, "
             "is below load balancers' idle timeouts, commonly 60: a request they send "
             "as the service closes the connection is lost)",
    )
    parser.add_argument("--log-format", choices=("json", "text"), default=None)
    parser.add_argument("--log-level", default=None)
    _add_config_options(parser)
    args = parser.parse_args(argv)
    _use_config_files(args.config_file)
    debug = args.debug or (args.log_level or "").lower() == "debug"
    with reported("placement-api", debug=debug):
        settings = load_settings()
        host = args.host or ("127.0.0.1" if settings.auth_strategy == "noauth2" else "0.0.0.0")
        check_listen_address(host, settings)
        check_keystone(settings)
        asyncio.run(check_database(settings))
    _prepare_multiprocess_metrics(args.workers)
    uvicorn.run(
        "app.main:app",
        host=host,
        port=args.port,
        workers=args.workers,
        root_path=args.root_path.rstrip("/"),
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips or ",".join(settings.trusted_proxies),
        timeout_graceful_shutdown=args.graceful_timeout,
        timeout_worker_healthcheck=args.worker_healthcheck_timeout,
        timeout_keep_alive=args.keep_alive_timeout,
        log_config=logging_config(args.log_format, args.log_level),
        access_log=False,
        server_header=False,
        # A request head over this gets uvicorn's plain-text 400: keep it well
        # above max_url_length, so long URLs get the placement-format 414.
        h11_max_incomplete_event_size=max(1 << 20, 4 * settings.max_url_length),
    )


async def _revision(engine: AsyncEngine) -> str | None:
    from app.db.schema import current_revision  # alembic: not in the serving master
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)


async def _sync(settings: Settings) -> str:
    url = settings.database_url
    await check_database(settings)
    engine = make_engine(url)
    try:
        before = await _revision(engine)
        from app.db.schema import sync_database  # alembic: not in the serving master
        await sync_database(engine)
        after = await _revision(engine)
    except StartupError:
        raise
    except Exception as exc:
        raise database_error(url, exc) from exc
    finally:
        await engine.dispose()
    if before is None:
        did = f"the schema is now at revision {after} (none recorded before)"
    elif before != after:
        did = f"upgraded the schema from revision {before} to {after}"
    else:
        did = f"the schema was already at revision {after}"
    return f"database {mask(url)}: {did}; standard resource classes and traits in place"


def manage(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="placement-manage")
    _add_config_options(parser)
    commands = parser.add_subparsers(dest="group", required=True)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="command", required=True)
    db_commands.add_parser("sync", help="create or upgrade the schema, sync standard data")
    config = commands.add_parser("config", help="the effective configuration")
    config_commands = config.add_subparsers(dest="command", required=True)
    config_commands.add_parser("show", help="effective settings and their sources, "
                                            "secrets masked")
    args = parser.parse_args(argv)
    _use_config_files(args.config_file)
    with reported("placement-manage", debug=args.debug):
        settings = load_settings()
        if args.group == "db" and args.command == "sync":
            print(asyncio.run(_sync(settings)))
            return
        if args.group == "config" and args.command == "show":
            print("\n".join(show.lines(settings)))
            return
    parser.print_help()
    sys.exit(2)
