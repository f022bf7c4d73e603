"""Unexpected errors as the placement 500 body, without dropping the connection.

Starlette hands an exception no handler claims to its outermost error
middleware, which answers and then re-raises it to the server: uvicorn logs it a
second time and closes the keep-alive connection. This layer sits inside the
placement middleware (so the answer carries the request id and microversion
headers), answers the placement 500 body, logs the error once, and returns.
"""

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import render_error
from app.exceptions import Unexpected

LOG = logging.getLogger(__name__)


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            LOG.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                # Half an answer is out: only closing the connection tells the client.
                raise
            response = render_error(Request(scope), Unexpected())
            await response(scope, receive, send)
