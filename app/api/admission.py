"""Admission control for expensive requests (issue 12).

``GET /allocation_candidates`` may cost seconds of CPU and much memory; a burst
of them must not starve the cheap requests served by the same worker. Per
worker process at most ``candidates_max_in_flight`` run at once; up to
``candidates_queue_size`` more wait, each at most ``candidates_queue_seconds``;
the rest answer 503 with ``Retry-After`` in the placement error format.
"""

import asyncio
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response
from app.api.http import route_path
from app.exceptions.limits import Overloaded
from app.settings import Settings

EXPENSIVE = frozenset({("GET", "/allocation_candidates")})


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(max(1, settings.candidates_max_in_flight))
        self.queue_size = max(0, settings.candidates_queue_size)
        self.wait = max(0.0, settings.candidates_queue_seconds)
        self.waiting = 0
        self.retry_after = str(max(1, math.ceil(self.wait)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], route_path(scope)) not in EXPENSIVE:
            await self.app(scope, receive, send)
            return
        if not await self._admit():
            await self._refuse(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

    async def _admit(self) -> bool:
        if not self.slots.locked():
            await self.slots.acquire()
            return True
        if self.waiting >= self.queue_size:
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        accept = next((value.decode("latin-1") for key, value in scope["headers"]
                       if key.lower() == b"accept"), None)
        error = Overloaded()
        response = error_response(
            503, error.message, request_id=state.get("request_id", ""),
            version=state.get("version"), code=error.code, accept=accept,
            headers={"retry-after": self.retry_after},
        )
        await response(scope, receive, send)
