"""The per-worker candidates snapshot answers exactly what the SQL answers.

Two apps on one database: one reads its snapshot (``candidates_snapshot_max_age
= 0``), the other runs the SQL (``-1``). A random cloud (trees, sharing
providers, traits, aggregates, usage) is built through the API, then many
random requests (granular groups, ``same_subtree``, forbidden and any-of
traits, ``member_of`` with ``in:`` and ``!``, ``in_tree``, ``root_required``,
``group_policy``, ``limit``, several microversions) must get the same status
and the same body from both. Between rounds the cloud changes through either
app (claims, traits, aggregates, inventories, new and deleted providers), so
the snapshot's incremental refresh is compared too.
"""

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.allocation_helpers import body as consumer_body
from tests.api_helpers import ADMIN_LATEST, asgi_client, running_app

CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB", "SRIOV_NET_VF", "CUSTOM_MAGIC")
TRAITS = ("HW_CPU_X86_AVX", "HW_CPU_X86_SSE", "CUSTOM_GOLD", "CUSTOM_SILVER", "HW_NIC_SRIOV")
SHARING = "MISC_SHARES_VIA_AGGREGATE"
Param = tuple[str, str | int | float | bool | None]
VERSIONS = ("1.10", "1.17", "1.21", "1.25", "1.28", "1.29", "1.31", "1.33", "1.35", "1.36",
            *("1.39",) * 8)


class RandomCloud:
    def __init__(self, rng: random.Random, client: httpx.AsyncClient) -> None:
        self.rng = rng
        self.client = client
        self.aggs = [str(uuid.uuid4()) for _ in range(4)]
        self.providers: list[str] = []
        self.roots: list[str] = []
        self.consumers: list[str] = []

    async def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(path, json=body)

    async def generation(self, rp: str) -> int:
        response = await self.client.get(f"/resource_providers/{rp}")
        assert response.status_code == 200, response.text
        return int(response.json()["generation"])

    async def provider(self, parent: str | None, inventory: dict[str, dict[str, Any]],
                       traits: list[str], aggs: list[str]) -> str:
        rp = str(uuid.uuid4())
        body: dict[str, Any] = {"name": f"rp-{rp}", "uuid": rp}
        if parent:
            body["parent_provider_uuid"] = parent
        response = await self.client.post("/resource_providers", json=body)
        assert response.status_code == 200, response.text
        self.providers.append(rp)
        if parent is None:
            self.roots.append(rp)
        if inventory:
            response = await self.put(f"/resource_providers/{rp}/inventories", {
                "resource_provider_generation": 0, "inventories": inventory})
            assert response.status_code == 200, response.text
        await self.set_traits(rp, traits)
        if aggs:
            response = await self.put(f"/resource_providers/{rp}/aggregates", {
                "resource_provider_generation": await self.generation(rp), "aggregates": aggs})
            assert response.status_code == 200, response.text
        return rp

    async def set_traits(self, rp: str, traits: list[str]) -> None:
        response = await self.put(f"/resource_providers/{rp}/traits", {
            "resource_provider_generation": await self.generation(rp), "traits": traits})
        assert response.status_code == 200, response.text

    def some(self, choices: tuple[str, ...] | list[str], most: int) -> list[str]:
        return self.rng.sample(list(choices), self.rng.randint(0, most))

    def inventory(self, classes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        rng = self.rng
        out: dict[str, dict[str, Any]] = {}
        for rc in classes:
            total = rng.choice((4, 8, 16, 64, 1024, 8192))
            out[rc] = {"total": total, "reserved": rng.choice((0, 0, 1)),
                       "allocation_ratio": rng.choice((1.0, 1.5, 4.0)),
                       "max_unit": rng.choice((total, max(1, total // 2))),
                       "step_size": rng.choice((1, 1, 2))}
        return out

    async def build(self) -> None:
        rng = self.rng
        for trait in TRAITS:
            if trait.startswith("CUSTOM_"):
                await self.client.put(f"/traits/{trait}")
        await self.client.put("/resource_classes/CUSTOM_MAGIC")
        for _ in range(10):
            nested = rng.random() < 0.4
            own = ("DISK_GB",) if nested else tuple(
                rc for rc in CLASSES[:3] if rng.random() < 0.8) or ("VCPU",)
            root = await self.provider(None, self.inventory(own), self.some(TRAITS, 2),
                                       self.some(self.aggs, 2))
            if nested:
                for _ in range(rng.randint(1, 2)):
                    await self.provider(root, self.inventory(("VCPU", "MEMORY_MB")),
                                        self.some(TRAITS, 1), [])
                pf = await self.provider(root, self.inventory(("SRIOV_NET_VF",)),
                                         self.some(TRAITS, 2), [])
                if rng.random() < 0.5:
                    await self.provider(pf, self.inventory(("CUSTOM_MAGIC",)), [], [])
        for _ in range(2):
            await self.provider(None, self.inventory(("DISK_GB",)),
                                [SHARING, *self.some(TRAITS, 1)],
                                self.some(self.aggs, 2) or [self.aggs[0]])
        for _ in range(6):
            await self.claim()

    async def claim(self) -> None:
        rng = self.rng
        rp = rng.choice(self.providers)
        response = await self.client.get(f"/resource_providers/{rp}/inventories")
        inventories = response.json()["inventories"]
        if not inventories:
            return
        rc = rng.choice(sorted(inventories))
        step = inventories[rc]["step_size"]
        consumer = str(uuid.uuid4())
        response = await self.put(f"/allocations/{consumer}", consumer_body({rp: {rc: step}}))
        if response.status_code == 204:
            self.consumers.append(consumer)

    async def change(self) -> None:
        """One random write: a claim, traits, aggregates, inventory, a new or gone provider.

        Deleting allocations and setting aggregates below 1.19 bump no generation.
        """
        rng = self.rng
        what = rng.choice(("claim", "claim", "unclaim", "traits", "aggs", "old aggs",
                           "inventory", "new", "delete"))
        rp = rng.choice(self.providers)
        if what == "claim":
            await self.claim()
        elif what == "unclaim" and self.consumers:
            consumer = self.consumers.pop(rng.randrange(len(self.consumers)))
            response = await self.client.delete(f"/allocations/{consumer}")
            assert response.status_code == 204, response.text
        elif what == "old aggs":
            response = await self.client.put(
                f"/resource_providers/{rp}/aggregates", json=self.some(self.aggs, 2),
                headers={"openstack-api-version": "placement 1.18"})
            assert response.status_code == 200, response.text
        elif what == "traits":
            await self.set_traits(rp, self.some(TRAITS, 3))
        elif what == "aggs":
            await self.put(f"/resource_providers/{rp}/aggregates", {
                "resource_provider_generation": await self.generation(rp),
                "aggregates": self.some(self.aggs, 2)})
        elif what == "inventory":
            await self.put(f"/resource_providers/{rp}/inventories/DISK_GB", {
                "resource_provider_generation": await self.generation(rp),
                "total": rng.choice((10, 100, 2000))})
        elif what == "new":
            await self.provider(None, self.inventory(CLASSES[:3]), self.some(TRAITS, 2),
                                self.some(self.aggs, 1))
        else:
            response = await self.client.delete(f"/resource_providers/{rp}")
            if response.status_code == 204:
                self.providers.remove(rp)
                if rp in self.roots:
                    self.roots.remove(rp)

    # -- requests ------------------------------------------------------------------------

    def traits_query(self, suffix: str) -> list[Param]:
        rng = self.rng
        out: list[Param] = []
        if rng.random() < 0.35:
            picked = self.some(TRAITS, 2)
            forbidden = self.some([t for t in TRAITS if t not in picked], 1)
            value = ",".join([*picked, *(f"!{t}" for t in forbidden)])
            if value:
                out.append((f"required{suffix}", value))
        if rng.random() < 0.2:
            out.append((f"required{suffix}", "in:" + ",".join(self.some(TRAITS, 3) or [TRAITS[0]])))
        if rng.random() < 0.3:
            aggs = self.some(self.aggs, 2) or [self.aggs[1]]
            out.append((f"member_of{suffix}", "in:" + ",".join(aggs)))
        if rng.random() < 0.1:
            out.append((f"member_of{suffix}", "!" + rng.choice(self.aggs)))
        return out

    def query(self) -> list[Param]:
        rng = self.rng
        amounts = {"VCPU": (1, 2, 3), "MEMORY_MB": (64, 512, 2048), "DISK_GB": (1, 10, 100),
                   "SRIOV_NET_VF": (1, 2), "CUSTOM_MAGIC": (1,)}
        params: list[Param] = []
        unsuffixed = self.some(CLASSES[:3], 3) or ["VCPU"]
        params.append(("resources", ",".join(f"{rc}:{rng.choice(amounts[rc])}"
                                             for rc in unsuffixed)))
        params += self.traits_query("")
        suffixes = []
        for number in range(1, rng.choice((1, 1, 2, 3, 4))):
            suffix = str(number)
            suffixes.append(suffix)
            if rng.random() < 0.2:  # resource-less (1.35+) group
                params.append((f"required{suffix}", rng.choice(TRAITS)))
            else:
                rc = rng.choice(CLASSES)
                params.append((f"resources{suffix}", f"{rc}:{rng.choice(amounts[rc])}"))
                params += self.traits_query(suffix)
        if suffixes:
            params.append(("group_policy", rng.choice(("isolate", "none"))))
        if len(suffixes) > 1 and rng.random() < 0.4:
            params.append(("same_subtree", ",".join(rng.sample(suffixes, 2))))
        if rng.random() < 0.15 and self.roots:
            params.append(("in_tree", rng.choice(self.roots)))
        if rng.random() < 0.2:
            params.append(("root_required", rng.choice((TRAITS[0], "!" + TRAITS[2]))))
        if rng.random() < 0.3:
            params.append(("limit", str(rng.choice((1, 2, 5)))))
        return params


def _comparable(response: httpx.Response) -> Any:
    """The body without what differs per request (an error's request id)."""
    body = response.json()
    for error in body.get("errors", ()):
        error.pop("request_id", None)
    return body


@pytest.fixture
async def clients(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    snapshot = Settings(database_url=database_url, auth_strategy="noauth2",
                        candidates_snapshot_max_age=0)
    sql = Settings(database_url=database_url, auth_strategy="noauth2",
                   candidates_snapshot_max_age=-1)
    async with running_app(snapshot) as first, running_app(sql) as second, asgi_client(
        first, ADMIN_LATEST
    ) as one, asgi_client(second, ADMIN_LATEST) as other:
        yield one, other


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_snapshot_answers_as_the_sql(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], seed: int
) -> None:
    from_snapshot, from_sql = clients
    rng = random.Random(seed)
    cloud = RandomCloud(rng, from_snapshot)
    await cloud.build()
    compared = non_empty = 0
    for round_ in range(4):
        for _ in range(60):
            params = httpx.QueryParams(cloud.query())
            headers = {"openstack-api-version": f"placement {rng.choice(VERSIONS)}"}
            mine = await from_snapshot.get("/allocation_candidates", params=params,
                                           headers=headers)
            theirs = await from_sql.get("/allocation_candidates", params=params,
                                        headers=headers)
            assert mine.status_code == theirs.status_code, (params, headers, mine.text)
            assert _comparable(mine) == _comparable(theirs), (params, headers)
            compared += 1
            if mine.status_code == 200 and mine.json()["allocation_requests"]:
                non_empty += 1
        # Writes through either app: the snapshot must see both.
        cloud.client = from_sql if round_ % 2 else from_snapshot
        for _ in range(5):
            await cloud.change()
    assert compared == 240
    print(f"seed {seed}: {non_empty} of {compared} answers had candidates")
    assert non_empty >= 40  # the random requests do find candidates
