"""Benchmark of ``GET /allocation_candidates`` on a large cloud, in process.

Loads a cloud shaped like the shared bench's (placeload's flat compute nodes,
nested-perfload's trees) straight into the tables -- fast even at 10,000
providers -- and then times the candidate queries through the whole ASGI
stack (routing, validation, SQL, combination, JSON) with an in-process client.

Flat provider i: VCPU 32 (max_unit 16), MEMORY_MB 8192 (min_unit 128),
DISK_GB 8192 (min_unit 5); aggregates 1-3 of three, traits 1-3 of
HW_CPU_X86_AVX2, HW_CPU_X86_SSE2, STORAGE_DISK_SSD. Tree t (8 providers): a
compute node (DISK_GB, COMPUTE_VOLUME_MULTI_ATTACH), two NUMA nodes (VCPU,
MEMORY_MB, HW_NUMA_ROOT, CUSTOM_FOO on one), FPGA/VGPU grandchildren and an
SR-IOV PF (SRIOV_NET_VF, HW_NIC_SRIOV).

Examples::

    .venv/bin/python benchmarks/allocation_candidates.py             # SQLite, 1,000 + 100 trees
    .venv/bin/python benchmarks/allocation_candidates.py -n 10000 --trees 1000
    .venv/bin/python benchmarks/allocation_candidates.py --trees 0        # flat only
    .venv/bin/python benchmarks/allocation_candidates.py -n 0 --trees 1250  # nested only
    .venv/bin/python benchmarks/allocation_candidates.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres -n 10000
    .venv/bin/python benchmarks/allocation_candidates.py --profile ac_perfload

With a PostgreSQL URL a fresh database is created beside the one named, and
dropped at the end (``--keep`` keeps it).
"""

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import models  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.api_helpers import asgi_client, running_app  # noqa: E402
from tests.databases import scratch_database  # noqa: E402

NS = uuidlib.UUID("1b671a64-40d5-491e-99b0-da01ff1f3341")
AGGREGATES = [str(uuidlib.uuid5(NS, f"agg/{i}")) for i in range(3)]
TRAITS = ["HW_CPU_X86_AVX2", "HW_CPU_X86_SSE2", "STORAGE_DISK_SSD"]
FLAT_INVENTORY = {
    "MEMORY_MB": {"total": 8192, "min_unit": 128, "max_unit": 8192},
    "DISK_GB": {"total": 8192, "min_unit": 5, "max_unit": 8192},
    "VCPU": {"total": 32, "min_unit": 1, "max_unit": 16},
}
# (key, parent key, inventories, traits)
TREE: list[tuple[str, str | None, dict[str, dict[str, int]], list[str]]] = [
    ("cn", None, {"DISK_GB": {"total": 20480}}, ["COMPUTE_VOLUME_MULTI_ATTACH"]),
    ("numa0", "cn", {"VCPU": {"total": 4, "reserved": 2},
                     "MEMORY_MB": {"total": 2048, "min_unit": 512, "step_size": 256}},
     ["HW_NUMA_ROOT"]),
    ("fpga0_0", "numa0", {"FPGA": {"total": 1}}, []),
    ("pgpu0_0", "numa0", {"VGPU": {"total": 8}}, []),
    ("numa1", "cn", {"VCPU": {"total": 4},
                     "MEMORY_MB": {"total": 2048, "min_unit": 256, "max_unit": 1024}},
     ["HW_NUMA_ROOT", "CUSTOM_FOO"]),
    ("fpga1_0", "numa1", {"FPGA": {"total": 1}}, []),
    ("fpga1_1", "numa1", {"FPGA": {"total": 1}}, []),
    ("pf0", "cn", {"SRIOV_NET_VF": {"total": 8}}, ["HW_NIC_SRIOV"]),
]


def queries(n_flat: int, n_trees: int) -> list[tuple[str, str, int | None]]:
    """(name, query, expected number of candidates) -- the shared bench's queries."""
    a0, a1, a2 = AGGREGATES
    perfload = (
        f"resources=VCPU:1,DISK_GB:10,MEMORY_MB:256&member_of={a0}&required=HW_CPU_X86_AVX2"
    )
    filtered = sum(1 for i in range(n_flat) if i % 3 in (1, 2) and (i // 3) % 3 in (1, 2))
    no_ssd = sum(1 for i in range(n_flat) if (i // 3) % 3 != 2)
    out: list[tuple[str, str, int | None]] = []
    if n_flat:
        out += [
            ("ac_perfload", perfload, n_flat),
            ("ac_perfload_limit50", perfload + "&limit=50", min(50, n_flat)),
            ("ac_flat_filtered",
             f"resources=VCPU:2,MEMORY_MB:1024,DISK_GB:20&member_of=in:{a1},{a2}"
             "&required=HW_CPU_X86_SSE2&limit=100", min(100, filtered)),
            ("ac_forbidden_trait",
             f"resources=VCPU:1,MEMORY_MB:256,DISK_GB:10&member_of={a0}"
             "&required=!STORAGE_DISK_SSD&limit=50", min(50, no_ssd)),
        ]
    if n_trees:
        out += [
            ("ac_nested_perfload",
             "resources=DISK_GB:10&required=COMPUTE_VOLUME_MULTI_ATTACH"
             "&resources_COMPUTE=VCPU:1,MEMORY_MB:256&required_COMPUTE=CUSTOM_FOO"
             "&resources_FPGA=FPGA:1&group_policy=none&same_subtree=_COMPUTE,_FPGA",
             2 * n_trees),
            ("ac_nested_isolate",
             "resources=DISK_GB:10&resources_COMPUTE=VCPU:1,MEMORY_MB:256"
             "&required_COMPUTE=HW_NUMA_ROOT&resources_NET=SRIOV_NET_VF:1"
             "&required_NET=HW_NIC_SRIOV&group_policy=isolate", n_trees),
            ("ac_nested_limit10",
             "resources=VCPU:1,MEMORY_MB:256,DISK_GB:10,SRIOV_NET_VF:1&limit=10",
             min(10, 2 * n_trees)),
        ]
    return out


async def load(engine: AsyncEngine, n_flat: int, n_trees: int, analyze: bool = True) -> None:
    """Bulk-insert the cloud (the app has already created the schema and standard names)."""
    rp, inv, rpt, rpa = (
        models.resource_providers,
        models.inventories,
        models.resource_provider_traits,
        models.resource_provider_aggregates,
    )
    async with engine.begin() as conn:
        await conn.execute(insert(models.traits).values(name="CUSTOM_FOO"))
        trait_ids = {
            name: id_ for name, id_ in await conn.execute(select(models.traits.c.name,
                                                                 models.traits.c.id))
        }
        class_ids = {
            name: id_
            for name, id_ in await conn.execute(
                select(models.resource_classes.c.name, models.resource_classes.c.id)
            )
        }
        agg_ids = []
        for number, agg in enumerate(AGGREGATES, start=1):
            await conn.execute(insert(models.placement_aggregates).values(id=number, uuid=agg))
            agg_ids.append(number)
        providers: list[dict[str, Any]] = []
        inventories: list[dict[str, Any]] = []
        traits: list[dict[str, Any]] = []
        aggregates: list[dict[str, Any]] = []

        def add_inventory(provider: int, spec: dict[str, dict[str, int]]) -> None:
            for rc, fields in spec.items():
                inventories.append({
                    "resource_provider_id": provider,
                    "resource_class_id": class_ids[rc],
                    "total": fields["total"],
                    "reserved": fields.get("reserved", 0),
                    "min_unit": fields.get("min_unit", 1),
                    "max_unit": fields.get("max_unit", fields["total"]),
                    "step_size": fields.get("step_size", 1),
                    "allocation_ratio": 1.0,
                })

        next_id = 1
        for i in range(n_flat):
            providers.append({
                "id": next_id, "uuid": str(uuidlib.uuid5(NS, f"flat/{i}")),
                "name": f"cn-{i:06d}", "generation": 3,
                "root_provider_id": next_id, "parent_provider_id": None,
            })
            add_inventory(next_id, FLAT_INVENTORY)
            for agg_id in agg_ids[: i % 3 + 1]:
                aggregates.append({"resource_provider_id": next_id, "aggregate_id": agg_id})
            for name in TRAITS[: (i // 3) % 3 + 1]:
                traits.append({"resource_provider_id": next_id, "trait_id": trait_ids[name]})
            next_id += 1
        for t in range(n_trees):
            ids: dict[str, int] = {}
            for key, parent, spec, names in TREE:
                ids[key] = next_id
                providers.append({
                    "id": next_id, "uuid": str(uuidlib.uuid5(NS, f"tree/{t}/{key}")),
                    "name": f"tree{t:06d}-{key}", "generation": 2,
                    "root_provider_id": ids["cn"],
                    "parent_provider_id": ids[parent] if parent else None,
                })
                add_inventory(next_id, spec)
                for name in names:
                    traits.append({"resource_provider_id": next_id,
                                   "trait_id": trait_ids[name]})
                next_id += 1
        for table, rows in ((rp, providers), (inv, inventories), (rpt, traits),
                            (rpa, aggregates)):
            for start in range(0, len(rows), 2000):
                await conn.execute(insert(table), rows[start:start + 2000])
        if analyze and engine.dialect.name == "postgresql":
            await conn.execute(text("ANALYZE"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    async with scratch_database(args.database_url or None, None, "ac_bench",
                                keep=args.keep) as url:
        settings = Settings(database_url=url, auth_strategy="noauth2")
        async with running_app(settings) as app:
            started = time.perf_counter()
            await load(app.state.database.engine, args.providers, args.trees)
            total = args.providers + args.trees * len(TREE)
            print(f"database {url.split('@')[-1]}: {args.providers} flat providers + "
                  f"{args.trees} trees = {total} providers, loaded in "
                  f"{time.perf_counter() - started:.1f} s")
            headers = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
            async with asgi_client(app, headers, "http://placement.bench") as client:
                await measure(client, args)


async def measure(client: httpx.AsyncClient, args: argparse.Namespace) -> None:
    print(f"{'query':24} {'cands':>6} {'expect':>6} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'max ms':>8} {'KB':>7}")
    for name, query, expected in queries(args.providers, args.trees):
        if args.only and name not in args.only:
            continue
        path = f"/allocation_candidates?{query}"
        response = await client.get(path)
        if response.status_code != 200:
            print(f"{name:24} HTTP {response.status_code}: {response.text[:200]}")
            continue
        count = len(response.json()["allocation_requests"])
        for _ in range(args.warmup):
            await client.get(path)
        if name in (args.profile or ()):
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.requests):
                await client.get(path)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            await client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        flag = "" if expected is None or expected == count else "  UNEXPECTED COUNT"
        print(f"{name:24} {count:6d} {expected if expected is not None else '-':>6} "
              f"{statistics.median(times):8.1f} {percentile(times, 0.95):8.1f} "
              f"{max(times):8.1f} {len(response.content) / 1024:7.0f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--providers", type=int, default=1000, help="flat providers")
    parser.add_argument("--trees", type=int, default=None,
                        help="nested trees of 8 providers (default: providers / 10)")
    parser.add_argument("--database-url", default="",
                        help="SQLite URL (default: a temporary file) or a PostgreSQL URL "
                             "whose server gets a fresh database")
    parser.add_argument("--requests", type=int, default=15, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="query names to run")
    parser.add_argument("--profile", nargs="*", help="query names to profile (cProfile)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    if args.trees is None:
        args.trees = args.providers // 10
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
