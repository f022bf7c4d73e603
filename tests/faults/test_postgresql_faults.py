"""Claims under load through PostgreSQL faults (issue 12): a restart, a 20 s
stop, terminated backends and another session holding a lock, with two worker
processes and sixteen concurrent clients. Never a 500, never a request left
without an answer, waits bounded, the service back within seconds of the
fault's removal, and the allocations intact: no provider over capacity, usages
equal to the sum of allocations, every consumer as its last certain answer said.
"""

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from tests.faults.cluster import PrivateCluster
from tests.faults.load import HEADERS, ClaimsLoad, check_invariants
from tests.live_server import LiveServer

CAPACITY = 40
PROVIDERS = 4
TERMINATE = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = 'placement' AND pid <> pg_backend_pid()")
# Longest a request may wait in any phase (the bounds configured in conftest:
# lock 2 s, pool 3 s, statements 5 s, plus the re-runs after a lost connection).
LONGEST_WAIT = 12.0
RECOVERY = 5.0


async def _seed(base_url: str) -> list[str]:
    providers = []
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as client:
        for n in range(PROVIDERS):
            created = await client.post("/resource_providers", json={"name": f"cn{n}"})
            assert created.status_code == 200, created.text
            provider = created.json()["uuid"]
            inventory = await client.put(
                f"/resource_providers/{provider}/inventories",
                json={"resource_provider_generation": 0,
                      "inventories": {"VCPU": {"total": CAPACITY}}})
            assert inventory.status_code == 200, inventory.text
            providers.append(provider)
    return providers


async def _hold_lock(cluster: PrivateCluster, seconds: float) -> None:
    """Another session holds the allocations table exclusively."""
    conn = await asyncpg.connect(cluster.dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("LOCK TABLE allocations IN ACCESS EXCLUSIVE MODE")
        await asyncio.sleep(seconds)
        await transaction.rollback()
    finally:
        await conn.close()


async def _probe(base_url: str, provider: str, until: asyncio.Event) -> float:
    """The worst latency of a request that needs no allocation (a provider)."""
    worst = 0.0
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as client:
        while not until.is_set():
            started = time.monotonic()
            response = await client.get(f"/resource_providers/{provider}")
            assert response.status_code == 200, response.text
            worst = max(worst, time.monotonic() - started)
            await asyncio.sleep(0.2)
    return worst


async def test_claims_through_database_faults(server: LiveServer,
                                              cluster: PrivateCluster) -> None:
    providers = await _seed(server.url)
    load = ClaimsLoad(server.url, providers)
    runner = asyncio.create_task(load.run())
    healed: dict[str, float] = {}
    left: dict[str, float] = {}
    extra: dict[str, float] = {}

    async def phase(name: str, fault: Callable[[], Awaitable[None]], settle: float) -> None:
        load.phase = name
        await fault()
        healed[name] = time.monotonic()
        await asyncio.sleep(settle)
        left[name] = time.monotonic()

    async def restart() -> None:
        await asyncio.to_thread(cluster.restart)

    async def stop_20s() -> None:
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(20)
        await asyncio.to_thread(cluster.start)

    async def terminate() -> None:
        for _ in range(10):
            await asyncio.to_thread(cluster.sql, TERMINATE)
            await asyncio.sleep(0.5)

    async def held_lock() -> None:
        done = asyncio.Event()
        probe = asyncio.create_task(_probe(server.url, providers[0], done))
        await _hold_lock(cluster, 6.0)
        done.set()
        extra["lock_probe_worst_s"] = await probe

    try:
        await asyncio.sleep(3)
        await phase("restart", restart, 5)
        await phase("stop", stop_20s, 6)
        await phase("terminate", terminate, 4)
        await phase("lock", held_lock, 4)
    finally:
        load.stop()
        await runner
    problems = await check_invariants(load, CAPACITY)
    recovery = {name: load.recovery(name, healed[name], left[name]) for name in healed}

    phases = {
        name: {
            "statuses": {str(k): v for k, v in sorted(load.statuses(name).items(), key=str)},
            "longest_wait_s": round(load.longest_wait(name), 2),
            "recovery_s": round(recovery.get(name, 0.0), 2),
        }
        for name in ("baseline", "restart", "stop", "terminate", "lock")
    }
    report = {"phases": phases, "extra": extra, "consumers": len(load.consumers),
              "invariant_problems": problems[:20]}
    print(json.dumps(report, indent=1))
    if os.environ.get("PLACEMENT_FAULTS_REPORT"):
        target = Path(os.environ["PLACEMENT_FAULTS_REPORT"])
        await asyncio.to_thread(target.write_text, json.dumps(report, indent=1))
    unexpected = [line for line in server.log_lines() if "unexpected error" in line]

    assert problems == []
    for name, figures in phases.items():
        statuses = load.statuses(name)
        assert set(statuses) <= {204, 409, 503}, (name, statuses)
        assert load.longest_wait(name) <= LONGEST_WAIT, (name, figures)
        assert recovery.get(name, 0.0) <= RECOVERY, (name, figures)
    # The load did claim (and ran into capacity): the answers above are real claims.
    assert load.statuses("baseline")[204] > 10
    assert sum(load.statuses(name)[409] for name in healed) > 0
    assert extra["lock_probe_worst_s"] < 2.0, extra
    assert unexpected == []


async def test_restart_while_idle_costs_no_request(server: LiveServer,
                                                   cluster: PrivateCluster) -> None:
    """Every pooled connection is stale after a restart: none may cost an answer."""
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=30) as client:
        # Fill both workers' pools with connections.
        await asyncio.gather(*(client.get("/resource_providers") for _ in range(20)))
        await asyncio.to_thread(cluster.restart)
        answers = await asyncio.gather(*(client.get("/resource_providers") for _ in range(20)))
    assert [r.status_code for r in answers] == [200] * 20


async def test_concurrent_creation_of_distinct_objects(server: LiveServer) -> None:
    """Sixteen clients creating distinct providers at once: no 409 (SERIALIZABLE
    used to abort them through shared index pages, 11 of 16 after 20 retries)."""
    statuses: dict[str, list[int]] = {}
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=60) as client:
        for _ in range(3):
            tag = uuid.uuid4().hex[:8]
            created = await asyncio.gather(*(
                client.post("/resource_providers", json={"name": f"new-{tag}-{n}"})
                for n in range(16)))
            statuses.setdefault("providers", []).extend(r.status_code for r in created)
            tag = tag.upper()
            classes = await asyncio.gather(*(
                client.put(f"/resource_classes/CUSTOM_C{tag}_{n}") for n in range(16)))
            statuses.setdefault("resource_classes", []).extend(r.status_code for r in classes)
            traits = await asyncio.gather(*(
                client.put(f"/traits/CUSTOM_T{tag}_{n}") for n in range(16)))
            statuses.setdefault("traits", []).extend(r.status_code for r in traits)
    print(json.dumps({kind: {str(s): codes.count(s) for s in set(codes)}
                      for kind, codes in statuses.items()}))
    assert statuses["providers"] == [200] * 48
    assert set(statuses["resource_classes"]) == {201}
    assert set(statuses["traits"]) == {201}
