"""An async, wire-compatible implementation of the OpenStack Placement API."""

from app.db import async_import

# Before any module of the app imports SQLAlchemy's asyncio names: without the ORM.
async_import.install()
