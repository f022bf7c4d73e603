"""Benchmark of the claim path: ``PUT /allocations/{new consumer}`` under concurrency.

Starts the service with uvicorn (or uses ``--url``), creates a few providers,
and lets ``--clients`` concurrent schedulers claim resources on them (random
provider, random size, ``consumer_generation: null``) until the providers are
full or ``--seconds`` pass. ``409 placement.concurrent_update`` is retried
(as nova does); a capacity 409 makes the client try another provider. With
``--churn F`` a fraction F of the operations deletes one of the client's
earlier consumers instead, for a steady state that does not run out.

Prints successful claims/s, the latency of the claim requests (p50/p95/p99),
retries and refusals, and checks the invariant at the end (no provider over
capacity; usages equal the sum of the successful claims).

Examples::

    .venv/bin/python benchmarks/claims.py                       # SQLite, 1 worker
    .venv/bin/python benchmarks/claims.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres --workers 2
    .venv/bin/python benchmarks/claims.py --url http://127.0.0.1:8778 --clients 32
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid as uuidlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the tests' helpers

from tests.databases import scratch_database_sync  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
INVENTORY: dict[str, dict[str, float]] = {
    "VCPU": {"total": 16, "reserved": 1, "allocation_ratio": 4.0},
    "MEMORY_MB": {"total": 32768, "reserved": 512, "allocation_ratio": 1.5},
    "DISK_GB": {"total": 4000, "reserved": 100},
}
CAPACITY = {
    rc: int((inv["total"] - inv.get("reserved", 0)) * inv.get("allocation_ratio", 1.0))
    for rc, inv in INVENTORY.items()
}


@contextmanager
def _server(database_url: str, workers: int) -> Iterator[str]:
    """Bare uvicorn, as this benchmark always measured (no metrics files)."""
    fd, log = tempfile.mkstemp(prefix="claims-bench-", suffix=".log")
    os.close(fd)
    server = LiveServer(
        database_url, Path(log), launcher="uvicorn",
        args=("--workers", str(workers), "--log-level", "warning", "--no-access-log"),
        ready_path="/resource_classes/VCPU", ready_answers=3 * workers, headers=HEADERS,
    )
    with server:
        yield server.url


class Run:
    def __init__(self, args: argparse.Namespace, providers: list[str]) -> None:
        self.args = args
        self.providers = providers
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.retries = 0
        self.refusals = 0
        self.deletes = 0
        self.held: dict[str, dict[str, dict[str, int]]] = {}
        self.deadline = 0.0

    async def client(self, http: httpx.AsyncClient, seed: int) -> None:
        rng = random.Random(seed)
        full: set[str] = set()
        mine: list[str] = []
        while time.monotonic() < self.deadline and len(full) < len(self.providers):
            if mine and rng.random() < self.args.churn:
                consumer = mine.pop(rng.randrange(len(mine)))
                response = await http.delete(f"/allocations/{consumer}")
                self.statuses[response.status_code] += 1
                if response.status_code == 204:
                    self.held.pop(consumer, None)
                    self.deletes += 1
                    full.clear()
                continue
            rp = rng.choice([p for p in self.providers if p not in full])
            resources = {"VCPU": rng.randint(1, 2), "MEMORY_MB": 512 * rng.randint(1, 4),
                         "DISK_GB": 10 * rng.randint(1, 5)}
            consumer = str(uuidlib.uuid4())
            body = {
                "allocations": {rp: {"resources": resources}},
                "consumer_generation": None,
                "project_id": "bench-project",
                "user_id": "bench-user",
                "consumer_type": "INSTANCE",
            }
            for _attempt in range(10):
                started = time.perf_counter()
                response = await http.put(f"/allocations/{consumer}", json=body)
                self.latencies.append(time.perf_counter() - started)
                self.statuses[response.status_code] += 1
                if response.status_code == 409 and "concurrent_update" in response.text:
                    self.retries += 1
                    continue
                break
            if response.status_code == 204:
                self.held[consumer] = {rp: resources}
                mine.append(consumer)
            elif response.status_code == 409:
                self.refusals += 1
                full.add(rp)

    async def check(self, http: httpx.AsyncClient) -> list[str]:
        problems = []
        expected: dict[str, Counter[str]] = defaultdict(Counter)
        for allocations in self.held.values():
            for rp, resources in allocations.items():
                expected[rp].update(resources)
        for rp in self.providers:
            usages = (await http.get(f"/resource_providers/{rp}/usages")).json()["usages"]
            for rc, capacity in CAPACITY.items():
                if usages[rc] > capacity:
                    problems.append(f"{rp} {rc}: usage {usages[rc]} > capacity {capacity}")
                if usages[rc] != expected[rp][rc]:
                    problems.append(f"{rp} {rc}: usage {usages[rc]} != claimed "
                                    f"{expected[rp][rc]}")
        return problems


async def _bench(url: str, args: argparse.Namespace) -> int:
    limits = httpx.Limits(max_connections=args.clients + 4,
                          max_keepalive_connections=args.clients + 4)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120,
                                 limits=limits) as http:
        providers = []
        for index in range(args.providers):
            rp = str(uuidlib.uuid4())
            response = await http.post("/resource_providers",
                                       json={"name": f"bench-{rp[:8]}-{index}", "uuid": rp})
            response.raise_for_status()
            response = await http.put(f"/resource_providers/{rp}/inventories", json={
                "resource_provider_generation": 0, "inventories": INVENTORY})
            response.raise_for_status()
            providers.append(rp)
        run = Run(args, providers)
        started = time.monotonic()
        run.deadline = started + args.seconds
        await asyncio.gather(*(run.client(http, seed) for seed in range(args.clients)))
        elapsed = time.monotonic() - started
        problems = await run.check(http)

    claims = run.statuses[204] - run.deletes
    lat = sorted(run.latencies)

    def pct(p: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    print(f"claims: {claims} successful in {elapsed:.2f} s = {claims / elapsed:.1f} claims/s "
          f"({args.clients} clients, {args.providers} providers)")
    if lat:
        print(f"claim request latency ms: p50 {pct(0.50):.1f}  p95 {pct(0.95):.1f}  "
              f"p99 {pct(0.99):.1f}  mean {1000 * statistics.fmean(lat):.1f}")
    print(f"statuses {dict(run.statuses)}; concurrent_update retries {run.retries}; "
          f"capacity refusals {run.refusals}; deletes {run.deletes}")
    exhausted = elapsed < args.seconds
    print(f"invariant: {'PASS' if not problems else 'FAIL'}"
          f"{'' if exhausted else ' (time bound reached before capacity ran out)'}")
    for problem in problems[:20]:
        print(f"  {problem}")
    return 1 if problems or any(status >= 500 for status in run.statuses) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an already running service (default: start one)")
    parser.add_argument("--database-url",
                        help="SQLAlchemy URL; a PostgreSQL one names the server, a fresh "
                             "database is created and dropped (default: temporary SQLite)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (default 1)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--providers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound")
    parser.add_argument("--churn", type=float, default=0.0,
                        help="fraction of operations that delete an earlier claim")
    args = parser.parse_args()
    if args.url:
        return asyncio.run(_bench(args.url, args))
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database_sync(args.database_url, Path(tmp), "claims_bench") as database_url,
        _server(database_url, args.workers) as url,
    ):
        return asyncio.run(_bench(url, args))


if __name__ == "__main__":
    sys.exit(main())
