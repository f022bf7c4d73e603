"""The per-worker provider queue claims wait in before taking a connection."""

import asyncio

from app.services.claim_queue import ProviderQueue


async def test_same_provider_waits_disjoint_does_not() -> None:
    queue = ProviderQueue()
    release = asyncio.Event()
    held = asyncio.Event()

    async def holder() -> None:
        async with queue.hold(["a", "b"]):
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()

    async def enter(providers: list[str]) -> None:
        async with queue.hold(providers):
            pass

    await asyncio.wait_for(enter(["c"]), 1)  # disjoint: straight through
    same = asyncio.create_task(enter(["c", "b"]))  # shares b: waits
    await asyncio.sleep(0.05)
    assert not same.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(task, same), 1)
    assert not queue._locks  # nothing left behind
    assert not queue._users


async def test_crossed_orders_do_not_deadlock() -> None:
    queue = ProviderQueue()

    async def claim(providers: list[str]) -> None:
        async with queue.hold(providers):
            await asyncio.sleep(0.001)

    await asyncio.wait_for(
        asyncio.gather(*(claim(["x", "y"] if i % 2 else ["y", "x"]) for i in range(20))), 5)
    assert not queue._locks
