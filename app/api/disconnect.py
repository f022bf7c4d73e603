"""Cancel the work of a request whose client has gone.

A client that gives up (a timeout, a closed connection) sends no more bytes;
the server then delivers ``http.disconnect`` on the receive channel. This layer
reads that channel on the request's behalf (handing the body on as the
handler asks for it) and cancels the handler when the client disconnects
before its response is complete. A unit of work cancelled so is rolled back:
``Database`` drops its connection rather than commit (app/db/database.py).
"""

import asyncio
import contextlib
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG = logging.getLogger(__name__)


class DisconnectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One message at a time: the pump reads the next only once the handler
        # took the last, so a body streams with backpressure (never buffered
        # whole here) and its size limit, enforced by an outer layer's receive,
        # still applies as the handler reads.
        messages: asyncio.Queue[Message | Exception] = asyncio.Queue(maxsize=1)
        complete = False
        handler = asyncio.current_task()
        assert handler is not None

        async def pump() -> None:
            # Everything the server delivers, in order; the disconnect ends it.
            while True:
                try:
                    message = await receive()
                except Exception as exc:  # an outer layer refusing the body: the handler's
                    await messages.put(exc)
                    return
                if message["type"] == "http.disconnect":
                    if not complete:
                        LOG.info("client went away before the answer to %s %s: cancelled",
                                 scope.get("method"), scope.get("path"))
                        handler.cancel()
                    with contextlib.suppress(asyncio.QueueFull):
                        messages.put_nowait(message)
                    return
                await messages.put(message)

        async def next_message() -> Message:
            item = await messages.get()
            if isinstance(item, Exception):
                raise item
            return item

        async def send_tracking(message: Message) -> None:
            nonlocal complete
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        watcher = asyncio.create_task(pump())
        try:
            await self.app(scope, next_message, send_tracking)
        except asyncio.CancelledError:
            if not watcher.done() or complete:
                raise  # cancelled from outside (shutdown), not by the disconnect
            # The client is gone: nothing to answer, and nothing more to do.
            if handler.cancelling():
                handler.uncancel()
        finally:
            if not watcher.done():
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
