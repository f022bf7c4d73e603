"""How long the event loop goes without running its other callbacks.

Issue 12 asks that no request block a worker's loop for more than about 100 ms.
A task sleeps ``INTERVAL`` at a time; whatever it oversleeps is time some
callback (a request's parsing, rendering, ...) held the loop. Stalls from
``REPORTED`` up are observed in the ``placement_event_loop_stall_seconds``
histogram (all workers' in multiprocess mode), which the hostile-input suite
reads around each request. The app's lifespan runs the watch.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from app.observability import metrics

INTERVAL = 0.05
REPORTED = 0.025


async def _watch() -> None:
    while True:
        started = time.monotonic()
        await asyncio.sleep(INTERVAL)
        stall = time.monotonic() - started - INTERVAL
        if stall >= REPORTED:
            metrics.LOOP_STALLS.observe(stall)


@contextlib.asynccontextmanager
async def watch_event_loop() -> AsyncIterator[None]:
    """Watch this loop's stalls for as long as the block runs."""
    task = asyncio.get_running_loop().create_task(_watch(), name="event-loop-stall-watch")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
