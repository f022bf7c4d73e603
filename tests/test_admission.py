"""Admission control of expensive requests (app/api/admission.py), over ASGI
with a slow endpoint in place of the candidates search."""

import asyncio

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from app.api.admission import AdmissionMiddleware
from app.settings import Settings


class SlowApp:
    """Candidates wait for ``release``; everything else answers at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.most = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.url.path == "/allocation_candidates":
            self.running += 1
            self.most = max(self.most, self.running)
            await self.release.wait()
            self.running -= 1
        response: Response = PlainTextResponse("ok")
        await response(scope, receive, send)


def _client(app: AdmissionMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_bounded_in_flight_then_queue_then_503() -> None:
    inner = SlowApp()
    settings = Settings(candidates_max_in_flight=2, candidates_queue_size=3,
                        candidates_queue_seconds=0.3)
    app = AdmissionMiddleware(inner, settings=settings)
    async with _client(app) as client:
        calls = [asyncio.create_task(client.get("/allocation_candidates")) for _ in range(8)]
        await asyncio.sleep(0.05)
        # Cheap requests pass while candidates wait.
        assert (await client.get("/resource_providers")).status_code == 200
        assert inner.running == 2
        refused = [await call for call in calls[5:]]
        assert {r.status_code for r in refused} == {503}
        body = refused[0].json()["errors"][0]
        assert body["status"] == 503
        assert body["title"] == "Service Unavailable"
        assert refused[0].headers["retry-after"] == "1"
        # The queued ones give up after candidates_queue_seconds.
        queued = [await call for call in calls[2:5]]
        assert {r.status_code for r in queued} == {503}
        inner.release.set()
        admitted = [await call for call in calls[:2]]
        assert {r.status_code for r in admitted} == {200}
    assert inner.most == 2


async def test_queued_requests_run_when_a_slot_frees() -> None:
    inner = SlowApp()
    settings = Settings(candidates_max_in_flight=1, candidates_queue_size=4,
                        candidates_queue_seconds=5.0)
    app = AdmissionMiddleware(inner, settings=settings)
    async with _client(app) as client:
        calls = [asyncio.create_task(client.get("/allocation_candidates")) for _ in range(4)]
        await asyncio.sleep(0.05)
        assert inner.running == 1
        inner.release.set()
        answers = [await call for call in calls]
    assert [r.status_code for r in answers] == [200] * 4
    assert inner.most == 1
