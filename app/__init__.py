"""An async, wire-compatible implementation of the OpenStack Placement API."""

from app import deferred_import
from app.db import async_import

# Before any module of the app imports SQLAlchemy's asyncio names: without the ORM.
async_import.install()
# Run only when used: PyYAML (oslo.policy imports it for YAML policy files),
# netaddr and rfc3986 (oslo.config imports them for address and URI options,
# none of which placement.conf's options are).
for _module in ("yaml", "netaddr", "rfc3986"):
    deferred_import.defer(_module)
# The service defines no pydantic v1 model, so FastAPI's checks for them need not
# load pydantic.v1.
deferred_import.keep_out("pydantic.v1")
