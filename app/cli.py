"""Console scripts: ``placement-api`` (serve) and ``placement-manage db sync``."""

import argparse
import asyncio
import sys

import uvicorn

from app.db.engine import make_engine
from app.db.schema import sync_database
from app.settings import get_settings


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="placement-api", description="Serve the Placement API.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8778)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--root-path", default="", help="path prefix, e.g. /placement")
    args = parser.parse_args(argv)
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        root_path=args.root_path,
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=30,
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
