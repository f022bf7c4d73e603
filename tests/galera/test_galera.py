"""Claims on a 3-node Galera cluster, one project replica writing to each node.

Phase 1: 24 scheduler-like clients spread over the replicas claim, re-claim and
delete (retrying 409 concurrent_update as nova does) until capacity runs out;
then: no provider over capacity, usages equal the sum of what the 2xx answers
wrote, every consumer holds exactly its last 2xx claim, no 5xx. Correctness
across nodes comes from the provider generation compare-and-swap: two claims on
one provider through different nodes write the same row, and Galera's
certification lets one commit (the other fails with a deadlock error and is
retried whole).

Phase 2: clients keep claiming through every replica while node 2 is stopped
and started again: the replicas on nodes 0 and 1 keep serving; replica 2
answers 503 (never 500) while its node is down and serves again by itself once
the node has rejoined. A claim answered 503 may or may not have committed: it
holds all of its allocation or none of it.
"""

import asyncio
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.galera.cluster import GaleraCluster
from tests.live_server import LiveServer, wait_until_answers
from tests.test_claims_concurrency import (
    CAPACITY,
    HEADERS,
    Scheduler,
    Stats,
    Truth,
    _check_invariants,
    create_providers,
)

CLIENTS = 24


@pytest.fixture
def replicas(galera: GaleraCluster, galera_database: str,
             tmp_path: Path) -> Iterator[list[LiveServer]]:
    servers = [
        LiveServer(node.url(galera_database), tmp_path / f"replica{node.index}.log",
                   launcher="uvicorn", args=("--log-level", "warning"),
                   ready_path="/resource_classes/VCPU", headers=HEADERS)
        for node in galera.nodes
    ]
    # All three start (and sync the schema, through three nodes) at once.
    for server in servers:
        server.spawn()
    try:
        for server in servers:
            wait_until_answers(server.url + server.ready_path, 120, server.proc,
                               server.log_path, headers=HEADERS)
        yield servers
    finally:
        for server in servers:
            server.stop(20.0)


async def test_claims_on_a_galera_cluster(galera: GaleraCluster,
                                          replicas: list[LiveServer]) -> None:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    clients = [httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=60,
                                 limits=limits) for server in replicas]
    try:
        await _phase_one(clients)
        await _phase_two(galera, clients)
    finally:
        for client in clients:
            await client.aclose()


async def _phase_one(clients: list[httpx.AsyncClient]) -> None:
    providers = await create_providers(clients[0], "galera-cn")
    stats = Stats()
    truth: dict[str, Truth] = {}
    schedulers = [Scheduler(clients[seed % len(clients)], providers, stats, truth, seed)
                  for seed in range(CLIENTS)]
    started = time.monotonic()
    await asyncio.gather(*(scheduler.run() for scheduler in schedulers))
    claims = sum(count for status, count in stats.statuses.items() if status < 300)
    print(f"\ngalera phase 1: {claims} 2xx writes in {time.monotonic() - started:.1f} s, "
          f"statuses {dict(stats.statuses)}, 409 concurrent_update retried {stats.conflicts}, "
          f"capacity refusals {stats.capacity_refusals}, 5xx {len(stats.server_errors)}")
    await _check_invariants(clients[1], providers, stats, truth)
    print("galera phase 1: over-commit 0, lost or partial 0")


async def _phase_two(galera: GaleraCluster, clients: list[httpx.AsyncClient]) -> None:
    providers = await create_providers(clients[0], "galera-down-cn")
    seen: list[Counter[int]] = [Counter() for _ in clients]
    during_outage: Counter[int] = Counter()
    outage = {"down": False, "over": False}
    outcomes: dict[str, tuple[str, int, int]] = {}  # consumer -> (provider, amount, status)
    stop = asyncio.Event()

    async def load(index: int, seed: int) -> None:
        client = clients[index]
        while not stop.is_set():
            consumer = str(uuidlib.uuid4())
            rp = providers[seed % len(providers)]
            amount = 1 + seed % 2
            try:
                response = await client.put(f"/allocations/{consumer}", json={
                    "allocations": {rp: {"resources": {"VCPU": amount}}},
                    "consumer_generation": None, "project_id": "galera-down",
                    "user_id": "u", "consumer_type": "INSTANCE"})
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            seen[index][status] += 1
            if index == 2 and outage["down"] and not outage["over"]:
                during_outage[status] += 1
            outcomes[consumer] = (rp, amount, status)
            await asyncio.sleep(0.05 if status != 409 else 0.2)

    tasks = [asyncio.create_task(load(index, seed))
             for seed in range(12) for index in (seed % len(clients),)]
    await asyncio.sleep(2)
    galera.stop_node(2)
    outage["down"] = True
    await asyncio.sleep(5)
    await asyncio.to_thread(galera.start_node, 2)
    outage["over"] = True
    # Replica 2 serves again by itself (its pool reconnects).
    recovered_after = None
    started = time.monotonic()
    while time.monotonic() - started < 60:
        if (await clients[2].get("/resource_providers")).status_code == 200:
            recovered_after = time.monotonic() - started
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*tasks)
    print(f"galera phase 2: replica statuses {[dict(counter) for counter in seen]}; "
          f"replica 2 while its node was down {dict(during_outage)}; serving again "
          f"{recovered_after:.1f} s after its node rejoined" if recovered_after is not None
          else "galera phase 2: replica 2 did not recover")
    assert recovered_after is not None
    for index, counter in enumerate(seen):
        assert not [status for status in counter if status >= 500 and status != 503], counter
        assert counter[0] == 0, counter  # never a dropped connection
        if index < 2:
            assert 503 not in counter, (index, counter)
    assert during_outage[503] > 0, during_outage
    assert seen[2][201] + seen[2][204] + seen[2][200] > during_outage[201] + during_outage[204]

    # Every 2xx claim is there, every 409 is not, every 503 is all or nothing.
    held: Counter[str] = Counter()
    for consumer, (rp, amount, status) in outcomes.items():
        got = (await clients[0].get(f"/allocations/{consumer}")).json()["allocations"]
        if status == 204:
            assert got == {rp: {"resources": {"VCPU": amount}, "generation": got[rp][
                "generation"]}}, (consumer, got)
        elif status == 409:
            assert got == {}, (consumer, got)
        else:
            assert got in ({}, {rp: {"resources": {"VCPU": amount},
                                     "generation": got.get(rp, {}).get("generation")}}), got
        if got:
            held[rp] += amount
    for rp in providers:
        usages = (await clients[0].get(f"/resource_providers/{rp}/usages")).json()["usages"]
        assert usages["VCPU"] == held[rp] <= CAPACITY["VCPU"], (rp, usages, held[rp])
    print("galera phase 2: over-commit 0, lost or partial 0")
