"""Claims under concurrency, against the real server in worker processes.

32+ async clients act like schedulers against a few small providers: they
claim new consumers (PUT and multi-consumer POST), replace and delete their
own consumers' allocations, and retry ``409 placement.concurrent_update``
as nova does, until capacity runs out. Every client keeps the ground truth of
its consumers (what the last 2xx wrote). At the end:

* no provider holds more than ``(total - reserved) * allocation_ratio`` of a class;
* provider usages equal the sum of the ground truth, and so do ``GET /usages``
  totals and consumer counts;
* every consumer holds exactly its ground truth (one whose claim failed holds
  nothing new), at the generation its successful writes imply;
* no response was a 5xx;
* the providers were really exhausted (a final 1-VCPU claim is refused at
  exactly the capacity).

PostgreSQL and MySQL/MariaDB: ``uvicorn --workers 3`` on a fresh database
next to ``PLACEMENT_TEST_DATABASE_URL`` (skipped when it names another
database). SQLite: one worker.
"""

import asyncio
import random
import uuid as uuidlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import sqlite_url
from tests.live_server import LiveServer

CLIENTS = 32
MAX_OPS = 30
PROJECT = "claims-project"
HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
INVENTORY = {
    "VCPU": {"total": 24, "reserved": 1, "allocation_ratio": 2.0, "max_unit": 6},
    "MEMORY_MB": {"total": 16384, "reserved": 512, "step_size": 256, "max_unit": 2048},
    "DISK_GB": {"total": 300, "max_unit": 30},
}
CAPACITY = {"VCPU": 46, "MEMORY_MB": 15872, "DISK_GB": 300}
PROVIDERS = 3

Allocation = dict[str, dict[str, int]]


def _server(database_url: str, workers: int, log: Path) -> LiveServer:
    """Bare uvicorn; several answers before it counts as up, so every worker started.
    Kept-alive connections stay open as placement-api keeps them (75 s): with
    uvicorn's 5 s, a connection a finished scheduler left idle could be closed
    by the server just as the final checks reused it (a client ReadError on a
    loaded machine, nothing to do with claims)."""
    return LiveServer(
        database_url, log, launcher="uvicorn",
        args=("--workers", str(workers), "--log-level", "warning",
              "--timeout-keep-alive", "75"),
        ready_path="/resource_classes/VCPU", ready_answers=5, headers=HEADERS,
    )


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[LiveServer]:
    with _server(sqlite_url(tmp_path / "claims.sqlite"), 1, tmp_path / "server.log") as server:
        yield server


@pytest.fixture
def pg_server(postgresql_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with _server(postgresql_url, 3, tmp_path / "server.log") as server:
        yield server


@pytest.fixture
def mysql_server(mysql_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with _server(mysql_url, 3, tmp_path / "server.log") as server:
        yield server


# ------------------------------------------------------------------ workload


@dataclass
class Truth:
    """What a consumer holds according to the 2xx answers it got."""

    allocations: Allocation = field(default_factory=dict)
    generation: int | None = None  # None: no consumer record


@dataclass
class Stats:
    statuses: Counter[int] = field(default_factory=Counter)
    conflicts: int = 0
    capacity_refusals: int = 0
    server_errors: list[str] = field(default_factory=list)


class Scheduler:
    def __init__(self, http: httpx.AsyncClient, providers: list[str], stats: Stats,
                 truth: dict[str, Truth], seed: int) -> None:
        self.http = http
        self.providers = providers
        self.stats = stats
        self.truth = truth
        self.rng = random.Random(seed)
        self.owned: list[str] = []

    def _claim(self) -> Allocation:
        rp = self.rng.choice(self.providers)
        resources = {"VCPU": self.rng.randint(1, 3),
                     "MEMORY_MB": 256 * self.rng.randint(1, 4)}
        if self.rng.random() < 0.5:
            resources["DISK_GB"] = self.rng.randint(5, 15)
        claim = {rp: resources}
        if self.rng.random() < 0.2:  # some claims span two providers
            other = self.rng.choice(self.providers)
            if other != rp:
                claim[other] = {"VCPU": 1}
        return claim

    def _body(self, consumer: str, allocations: Allocation) -> dict[str, Any]:
        return {
            "allocations": {rp: {"resources": res} for rp, res in allocations.items()},
            "consumer_generation": self.truth[consumer].generation,
            "project_id": PROJECT,
            "user_id": "claims-user",
            "consumer_type": "INSTANCE",
        }

    async def _send(self, method: str, url: str, json: Any = None) -> httpx.Response:
        """One logical request; ``409 concurrent_update`` retried like nova does."""
        for _ in range(20):
            response = await self.http.request(method, url, json=json)
            self.stats.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.stats.server_errors.append(f"{method} {url}: {response.text[:300]}")
                return response
            if response.status_code == 409 and (
                response.json()["errors"][0]["code"] == "placement.concurrent_update"
            ):
                self.stats.conflicts += 1
                await asyncio.sleep(self.rng.uniform(0.001, 0.02))
                continue
            return response
        return response

    def _refused(self, response: httpx.Response) -> bool:
        """A 409 (capacity, or concurrent_update after all retries) changed nothing."""
        if response.status_code == 409:
            if "exceed the capacity" in response.text:
                self.stats.capacity_refusals += 1
            return True
        assert response.status_code < 400, response.text
        return False

    async def put(self, consumer: str, allocations: Allocation) -> bool:
        response = await self._send("PUT", f"/allocations/{consumer}",
                                    self._body(consumer, allocations))
        if self._refused(response) or response.status_code >= 500:
            return False
        state = self.truth[consumer]
        state.allocations = allocations
        state.generation = (state.generation or 0) + 1
        return True

    async def post_pair(self) -> bool:
        pair = [str(uuidlib.uuid4()) for _ in range(2)]
        claims = {consumer: self._claim() for consumer in pair}
        for consumer in pair:
            self.truth[consumer] = Truth()
        response = await self._send("POST", "/allocations", {
            consumer: self._body(consumer, claim) for consumer, claim in claims.items()})
        if self._refused(response) or response.status_code >= 500:
            return False
        for consumer, claim in claims.items():
            self.truth[consumer] = Truth(claim, 1)
            self.owned.append(consumer)
        return True

    async def delete(self, consumer: str) -> None:
        response = await self._send("DELETE", f"/allocations/{consumer}")
        assert response.status_code == 204, response.text
        self.truth[consumer] = Truth()
        self.owned.remove(consumer)

    async def run(self) -> None:
        refused_in_a_row = 0
        for _ in range(MAX_OPS):
            roll = self.rng.random()
            if self.owned and roll < 0.1:
                await self.delete(self.rng.choice(self.owned))
                continue
            if self.owned and roll < 0.3:
                ok = await self.put(self.rng.choice(self.owned), self._claim())
            elif roll < 0.4:
                ok = await self.post_pair()
            else:
                consumer = str(uuidlib.uuid4())
                self.truth[consumer] = Truth()
                ok = await self.put(consumer, self._claim())
                if ok:
                    self.owned.append(consumer)
            refused_in_a_row = 0 if ok else refused_in_a_row + 1
            if refused_in_a_row >= 4:
                return


async def create_providers(http: httpx.AsyncClient, prefix: str) -> list[str]:
    """PROVIDERS providers named ``prefix<N>``, each with INVENTORY."""
    providers = []
    for index in range(PROVIDERS):
        rp = str(uuidlib.uuid4())
        created = await http.post("/resource_providers", json={"name": f"{prefix}{index}",
                                                               "uuid": rp})
        assert created.status_code == 200, created.text
        inventory = await http.put(f"/resource_providers/{rp}/inventories", json={
            "resource_provider_generation": 0, "inventories": INVENTORY})
        assert inventory.status_code == 200, inventory.text
        providers.append(rp)
    return providers


async def _exercise(base_url: str) -> None:
    limits = httpx.Limits(max_connections=CLIENTS + 8, max_keepalive_connections=CLIENTS + 8)
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=60,
                                 limits=limits) as http:
        providers = await create_providers(http, "cn")

        stats = Stats()
        truth: dict[str, Truth] = {}
        schedulers = [Scheduler(http, providers, stats, truth, seed) for seed in range(CLIENTS)]
        await asyncio.gather(*(scheduler.run() for scheduler in schedulers))
        await _check_invariants(http, providers, stats, truth)


async def _check_invariants(http: httpx.AsyncClient, providers: list[str], stats: Stats,
                            truth: dict[str, Truth]) -> None:
    """Exhaust what is left, then check the invariants of the module's docstring."""
    # Fill what is left one VCPU at a time: the last claim must be refused
    # exactly at capacity.
    filler = Scheduler(http, providers, stats, truth, 12345)
    for rp in providers:
        while True:
            consumer = str(uuidlib.uuid4())
            truth[consumer] = Truth()
            if not await filler.put(consumer, {rp: {"VCPU": 1}}):
                break

    print(f"\nclaims: statuses {dict(stats.statuses)}, concurrent_update retries "
          f"{stats.conflicts}, capacity refusals {stats.capacity_refusals}")
    assert not stats.server_errors, stats.server_errors[:5]
    assert stats.capacity_refusals > 0

    expected: dict[str, dict[str, int]] = {rp: defaultdict(int) for rp in providers}
    for state in truth.values():
        for rp, resources in state.allocations.items():
            for rc, amount in resources.items():
                expected[rp][rc] += amount
    for rp in providers:
        usages = (await http.get(f"/resource_providers/{rp}/usages")).json()["usages"]
        for rc, capacity in CAPACITY.items():
            assert usages[rc] <= capacity, (rp, rc, usages)
            assert usages[rc] == expected[rp][rc], (rp, rc, usages, dict(expected[rp]))
        assert usages["VCPU"] == CAPACITY["VCPU"], usages

    holders = {c: s for c, s in truth.items() if s.allocations}
    totals = (await http.get(f"/usages?project_id={PROJECT}")).json()["usages"]
    instance = totals["INSTANCE"]
    assert instance.pop("consumer_count") == len(holders)
    summed: Counter[str] = Counter()
    for state in holders.values():
        for resources in state.allocations.values():
            summed.update(resources)
    assert instance == dict(summed)

    semaphore = asyncio.Semaphore(16)

    async def check(consumer: str, state: Truth) -> None:
        async with semaphore:
            got = (await http.get(f"/allocations/{consumer}")).json()
        held = {rp: entry["resources"] for rp, entry in got["allocations"].items()}
        assert held == state.allocations, (consumer, held, state)
        if state.allocations:
            assert got["consumer_generation"] == state.generation, (consumer, got, state)

    await asyncio.gather(*(check(c, s) for c, s in truth.items()))
    assert stats.statuses[204] > CLIENTS


async def test_concurrent_claims_postgresql(pg_server: LiveServer) -> None:
    await _exercise(pg_server.url)


async def test_concurrent_claims_mysql(mysql_server: LiveServer) -> None:
    await _exercise(mysql_server.url)


async def test_concurrent_claims_sqlite(sqlite_server: LiveServer) -> None:
    await _exercise(sqlite_server.url)
