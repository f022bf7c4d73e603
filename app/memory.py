"""What a worker does to keep its resident memory small (glibc's allocator).

* ``limit_arenas`` (at import of ``app.main``, before any thread): glibc gives
  each thread that allocates its own arena, up to 8 per core, and an arena's
  freed pages mostly stay resident. The candidates rendering runs in
  ``asyncio.to_thread`` workers (up to 6 threads): two arenas serve them all.
* ``release_free_memory`` (after start-up): returns to the system the pages the
  start-up freed (building the app, the routes' models and the policy), which
  glibc otherwise keeps at the top of the heap and in its free lists.

Anything but glibc (musl, macOS) leaves both as no-ops. Nothing here changes
what the service answers.
"""

import ctypes
import logging
from functools import cache

LOG = logging.getLogger(__name__)

# mallopt parameters (glibc's malloc.h)
_M_ARENA_MAX = -8

# Arenas for every thread of a worker: the event loop's and the render threads'.
ARENAS = 2


@cache
def _libc() -> ctypes.CDLL | None:
    """The C library the interpreter runs on, if it is glibc."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc's among them
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: AttributeError elsewhere)
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> None:
    """At most ``arenas`` malloc arenas in this process (call before threads start)."""
    libc = _libc()
    if libc is not None and not libc.mallopt(_M_ARENA_MAX, arenas):
        LOG.debug("mallopt(M_ARENA_MAX) refused")


def release_free_memory() -> None:
    """Hand the allocator's free pages back to the system (``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
