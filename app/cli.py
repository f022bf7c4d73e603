"""Console scripts: ``placement-api`` (serve) and ``placement-manage db sync``."""

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import uvicorn

from app.db.engine import make_engine
from app.db.schema import sync_database
from app.logging_config import logging_config
from app.settings import get_settings


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


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="placement-api", description="Serve the Placement API.")
    parser.add_argument("--host", default=os.environ.get("PLACEMENT_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=_env_int("PLACEMENT_PORT", 8778))
    parser.add_argument("--workers", type=int, default=_env_int("PLACEMENT_WORKERS", 1))
    parser.add_argument(
        "--root-path",
        default=os.environ.get("PLACEMENT_ROOT_PATH", ""),
        help="path prefix the service is mounted under, e.g. /placement (links carry it)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get("FORWARDED_ALLOW_IPS", "*"),
        help="proxies trusted for X-Forwarded-Proto/-For (comma list, '*' = any)",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=int,
        default=_env_int("PLACEMENT_GRACEFUL_TIMEOUT", 30),
        help="seconds to let requests in flight finish after SIGTERM",
    )
    parser.add_argument("--log-format", choices=("json", "text"), default=None)
    parser.add_argument("--log-level", default=None)
    args = parser.parse_args(argv)
    _prepare_multiprocess_metrics(args.workers)
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        root_path=args.root_path.rstrip("/"),
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        timeout_graceful_shutdown=args.graceful_timeout,
        log_config=logging_config(args.log_format, args.log_level),
        access_log=False,
        server_header=False,
    )


async def _sync() -> None:
    engine = make_engine(get_settings().database_url)
    try:
        await sync_database(engine)
    finally:
        await engine.dispose()


def manage(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="placement-manage")
    commands = parser.add_subparsers(dest="group", required=True)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="command", required=True)
    db_commands.add_parser("sync", help="create or upgrade the schema, sync standard data")
    args = parser.parse_args(argv)
    if args.group == "db" and args.command == "sync":
        asyncio.run(_sync())
        print("database is at the current schema")
        return
    parser.print_help()
    sys.exit(2)
