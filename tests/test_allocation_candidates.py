"""GET /allocation_candidates through the API: the worked examples of
allocation-candidates.md §9 (reference outputs), the 400s of spec §12.2, and the
early stops (limit, max_allocation_candidates)."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, app_client, make_provider, microversion


class Cloud:
    """Builds providers through the API and names them for assertions."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.uuids: dict[str, str] = {}
        self.aggs: dict[str, str] = {}

    def name_of(self, rp_uuid: str) -> str:
        return next(name for name, value in self.uuids.items() if value == rp_uuid)

    def agg(self, name: str) -> str:
        return self.aggs.setdefault(name, str(uuid.uuid4()))

    async def provider(
        self,
        name: str,
        inventory: dict[str, Any] | None = None,
        traits: tuple[str, ...] = (),
        aggs: tuple[str, ...] = (),
        parent: str | None = None,
    ) -> str:
        inventories = {
            rc: spec if isinstance(spec, dict) else {"total": spec}
            for rc, spec in (inventory or {}).items()
        }
        rp = await make_provider(self.client, inventories, name=name,
                                 parent=self.uuids[parent] if parent else None)
        self.uuids[name] = rp
        generation = 1 if inventories else 0
        if traits:
            for trait in traits:
                if trait.startswith("CUSTOM_"):
                    await self.client.put(f"/traits/{trait}")
            response = await self.client.put(
                f"/resource_providers/{rp}/traits",
                json={"resource_provider_generation": generation, "traits": list(traits)},
            )
            assert response.status_code == 200, response.text
            generation += 1
        if aggs:
            response = await self.client.put(
                f"/resource_providers/{rp}/aggregates",
                json={
                    "resource_provider_generation": generation,
                    "aggregates": [self.agg(a) for a in aggs],
                },
            )
            assert response.status_code == 200, response.text
        return rp

    async def candidates(self, query: str, v: str = "1.39") -> dict[str, Any]:
        response = await self.client.get(f"/allocation_candidates?{query}", headers=microversion(v))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def requests(self, query: str, v: str = "1.39") -> list[dict[str, dict[str, int]]]:
        """Each allocation request as {provider name: resources}."""
        body = await self.candidates(query, v)
        out = []
        for request in body["allocation_requests"]:
            allocations = request["allocations"]
            if isinstance(allocations, list):
                out.append({
                    self.name_of(item["resource_provider"]["uuid"]): item["resources"]
                    for item in allocations
                })
            else:
                out.append({
                    self.name_of(rp): value["resources"] for rp, value in allocations.items()
                })
        return out

    async def mappings(self, query: str, v: str = "1.39") -> list[dict[str, list[str]]]:
        body = await self.candidates(query, v)
        return [
            {suffix: sorted(self.name_of(rp) for rp in rps)
             for suffix, rps in request["mappings"].items()}
            for request in body["allocation_requests"]
        ]

    def uuid(self, name: str) -> str:
        return self.uuids[name]


def canon(requests: list[dict[str, dict[str, int]]]) -> list[list[tuple[str, str, int]]]:
    return sorted(
        sorted((name, rc, amount) for name, res in request.items() for rc, amount in res.items())
        for request in requests
    )


def expect(*requests: dict[str, dict[str, int]]) -> list[list[tuple[str, str, int]]]:
    return canon(list(requests))


@pytest.fixture
async def cloud(client: httpx.AsyncClient) -> Cloud:
    """The fixture of allocation-candidates.md §9."""
    c = Cloud(client)
    await c.provider("cn1", {"VCPU": 8, "MEMORY_MB": 4096}, ("HW_CPU_X86_AVX",), ("A",))
    await c.provider("cn2", {"VCPU": 8, "MEMORY_MB": 4096, "DISK_GB": 100}, (), ("B",))
    await c.provider("ss", {"DISK_GB": 1000}, ("MISC_SHARES_VIA_AGGREGATE",), ("A",))
    await c.provider("cn3", {"VCPU": 4, "MEMORY_MB": 2048}, ("CUSTOM_ROOT_GOLD",), ("C",))
    await c.provider("pf1", {"SRIOV_NET_VF": 4}, ("CUSTOM_PHYSNET_A",), ("D",), parent="cn3")
    await c.provider("pf2", {"SRIOV_NET_VF": 4}, ("CUSTOM_PHYSNET_B",), parent="cn3")
    await c.provider("numa0", None, ("CUSTOM_NUMA",), parent="cn3")
    await c.provider("pf3", {"SRIOV_NET_VF": 2}, ("CUSTOM_PHYSNET_A",), parent="numa0")
    return c


# -- §9 worked examples: sharing ------------------------------------------------------------

async def test_sharing(cloud: Cloud) -> None:
    q = "resources=VCPU:1,DISK_GB:10"
    assert canon(await cloud.requests(q)) == expect(
        {"cn2": {"VCPU": 1, "DISK_GB": 10}}, {"cn1": {"VCPU": 1}, "ss": {"DISK_GB": 10}}
    )
    # ss's solutions through anchors ss and cn1 collapse into one
    assert canon(await cloud.requests("resources=DISK_GB:10")) == expect(
        {"cn2": {"DISK_GB": 10}}, {"ss": {"DISK_GB": 10}}
    )
    assert canon(await cloud.requests(f"{q}&member_of={cloud.agg('A')}")) == expect(
        {"cn1": {"VCPU": 1}, "ss": {"DISK_GB": 10}}
    )
    assert canon(await cloud.requests(f"{q}&member_of=!{cloud.agg('A')}")) == expect(
        {"cn2": {"VCPU": 1, "DISK_GB": 10}}
    )
    assert await cloud.requests(f"{q}&in_tree={cloud.uuid('cn1')}") == []
    assert canon(await cloud.requests(f"{q}&root_required=HW_CPU_X86_AVX")) == expect(
        {"cn1": {"VCPU": 1}, "ss": {"DISK_GB": 10}}
    )
    assert await cloud.requests(f"{q}&root_required=MISC_SHARES_VIA_AGGREGATE") == []
    assert canon(await cloud.requests(f"{q}&required=MISC_SHARES_VIA_AGGREGATE")) == expect(
        {"cn1": {"VCPU": 1}, "ss": {"DISK_GB": 10}}
    )


async def test_sharing_granular(cloud: Cloud) -> None:
    q = f"resources=VCPU:1&resources1=DISK_GB:10&in_tree1={cloud.uuid('ss')}"
    assert await cloud.mappings(q) == [{"": ["cn1"], "1": ["ss"]}]
    q = "resources=VCPU:1&resources1=DISK_GB:10"
    assert sorted(map(str, await cloud.mappings(q))) == sorted(
        map(str, [{"": ["cn1"], "1": ["ss"]}, {"": ["cn2"], "1": ["cn2"]}])
    )


# -- §9 worked examples: nested ---------------------------------------------------------------

async def test_nested(cloud: Cloud) -> None:
    q = "resources=VCPU:1,SRIOV_NET_VF:1"
    assert await cloud.requests(q, "1.28") == []
    assert canon(await cloud.requests(q, "1.29")) == expect(
        {"cn3": {"VCPU": 1}, "pf1": {"SRIOV_NET_VF": 1}},
        {"cn3": {"VCPU": 1}, "pf2": {"SRIOV_NET_VF": 1}},
        {"cn3": {"VCPU": 1}, "pf3": {"SRIOV_NET_VF": 1}},
    )
    body = await cloud.candidates(q, "1.29")
    summaries = {cloud.name_of(rp): s for rp, s in body["provider_summaries"].items()}
    assert set(summaries) == {"cn3", "pf1", "pf2", "numa0", "pf3"}
    assert summaries["numa0"]["resources"] == {}
    assert summaries["pf3"]["parent_provider_uuid"] == cloud.uuid("numa0")
    assert summaries["pf3"]["root_provider_uuid"] == cloud.uuid("cn3")
    assert summaries["cn3"]["traits"] == ["CUSTOM_ROOT_GOLD"]
    assert canon(await cloud.requests("resources=SRIOV_NET_VF:1", "1.28")) == expect(
        {"pf1": {"SRIOV_NET_VF": 1}}, {"pf2": {"SRIOV_NET_VF": 1}}, {"pf3": {"SRIOV_NET_VF": 1}}
    )
    assert {
        frozenset(r) for r in await cloud.requests(f"{q}&required=CUSTOM_PHYSNET_A", "1.29")
    } == {frozenset({"cn3", "pf1"}), frozenset({"cn3", "pf3"})}
    assert {
        frozenset(r) for r in await cloud.requests(f"{q}&required=!CUSTOM_PHYSNET_A", "1.29")
    } == {frozenset({"cn3", "pf2"})}
    assert len(await cloud.requests(f"{q}&required=CUSTOM_ROOT_GOLD", "1.29")) == 3
    # the root contributes nothing: its trait does not count
    assert await cloud.requests("resources=SRIOV_NET_VF:1&required=CUSTOM_ROOT_GOLD") == []
    assert len(await cloud.requests("resources=SRIOV_NET_VF:1&root_required=CUSTOM_ROOT_GOLD")) == 3
    assert await cloud.requests(f"{q}&required=!CUSTOM_ROOT_GOLD", "1.29") == []


async def test_nested_aggregates(cloud: Cloud) -> None:
    c, d = cloud.agg("C"), cloud.agg("D")
    vf = "resources=SRIOV_NET_VF:1"
    assert len(await cloud.requests(f"{vf}&member_of={c}")) == 3  # C is on the root
    assert await cloud.requests(f"resources1=SRIOV_NET_VF:1&member_of1={c}") == []
    assert [list(r) for r in await cloud.requests(f"{vf}&member_of={d}", "1.36")] == [["pf1"]]
    assert await cloud.requests(f"{vf}&member_of={c}&member_of={d}", "1.36") == []
    assert len(await cloud.requests(f"{vf}&member_of=in:{c},{d}", "1.36")) == 3
    assert await cloud.requests(f"{vf}&member_of=!{c}", "1.32") == []
    assert len(await cloud.requests(f"resources1=SRIOV_NET_VF:1&member_of1=!{c}", "1.32")) == 3
    assert len(await cloud.requests(f"{vf}&in_tree={cloud.uuid('numa0')}", "1.31")) == 3
    q = "resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1=CUSTOM_PHYSNET_A"
    assert await cloud.requests(q, "1.25") == []
    assert sorted(map(str, await cloud.mappings(q, "1.34"))) == sorted(
        map(str, [{"": ["cn3"], "1": ["pf1"]}, {"": ["cn3"], "1": ["pf3"]}])
    )


async def test_group_policy(cloud: Cloud) -> None:
    q = "resources=VCPU:1&resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1"
    response = await cloud.client.get(f"/allocation_candidates?{q}", headers=microversion("1.34"))
    assert response.status_code == 400
    assert '"group_policy" parameter is required' in response.json()["errors"][0]["detail"]
    none = await cloud.mappings(f"{q}&group_policy=none", "1.34")
    assert len(none) == 9
    isolate = await cloud.mappings(f"{q}&group_policy=isolate", "1.34")
    assert len(isolate) == 6
    assert all(m["1"] != m["2"] for m in isolate)
    both = [r for r in await cloud.requests(f"{q}&group_policy=none", "1.34") if len(r) == 2]
    assert sorted(r[name]["SRIOV_NET_VF"] for r in both for name in r if name != "cn3") == [
        2, 2, 2
    ]
    vcpu2 = "resources1=VCPU:1&resources2=VCPU:1"
    assert await cloud.requests(f"{vcpu2}&group_policy=isolate", "1.34") == []
    assert canon(await cloud.requests(f"{vcpu2}&group_policy=none", "1.34")) == expect(
        {"cn1": {"VCPU": 2}}, {"cn2": {"VCPU": 2}}, {"cn3": {"VCPU": 2}}
    )
    # cn3 (capacity 4) fails the re-check of the consolidated amounts
    assert canon(
        await cloud.requests("resources1=VCPU:3&resources2=VCPU:3&group_policy=none", "1.34")
    ) == expect({"cn1": {"VCPU": 6}}, {"cn2": {"VCPU": 6}})


async def test_same_subtree(cloud: Cloud) -> None:
    q = (
        "resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&required_N=CUSTOM_NUMA"
        "&same_subtree=1,2,_N&group_policy=none"
    )
    assert await cloud.mappings(q, "1.36") == [{"1": ["pf3"], "2": ["pf3"], "_N": ["numa0"]}]
    assert canon(await cloud.requests(q, "1.36")) == expect({"pf3": {"SRIOV_NET_VF": 2}})
    q = "resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&same_subtree=1,2&group_policy=isolate"
    assert await cloud.requests(q, "1.36") == []
    q = (
        "resources=VCPU:1&required1=CUSTOM_NUMA&required2=CUSTOM_PHYSNET_A"
        "&same_subtree=1,2&group_policy=isolate"
    )
    assert await cloud.mappings(q, "1.36") == [{"": ["cn3"], "1": ["numa0"], "2": ["pf3"]}]
    q = (
        "resources=VCPU:1&required1=CUSTOM_NUMA&required2=CUSTOM_PHYSNET_A"
        "&same_subtree=1&same_subtree=2&group_policy=none"
    )
    assert sorted(m["2"][0] for m in await cloud.mappings(q, "1.36")) == ["pf1", "pf3"]
    q = "resources1=VCPU:1&resources2=SRIOV_NET_VF:1&same_subtree=1,2&group_policy=none"
    assert len(await cloud.requests(q, "1.36")) == 3
    assert await cloud.mappings("resources=VCPU:1&required_X=CUSTOM_NUMA&same_subtree=_X") == [
        {"": ["cn3"], "_X": ["numa0"]}
    ]
    assert await cloud.requests("resources=VCPU:1&required_X=!CUSTOM_NUMA&same_subtree=_X") == []


async def test_any_traits(cloud: Cloud) -> None:
    q = "resources=VCPU:1&required=in:HW_CPU_X86_AVX,CUSTOM_ROOT_GOLD"
    assert sorted(next(iter(r)) for r in await cloud.requests(q)) == ["cn1", "cn3"]
    q = "resources=VCPU:1&required=in:CUSTOM_ROOT_GOLD,HW_CPU_X86_AVX&required=!CUSTOM_ROOT_GOLD"
    assert [list(r) for r in await cloud.requests(q)] == [["cn1"]]
    q = (
        "resources1=SRIOV_NET_VF:1&required1=in:CUSTOM_PHYSNET_A,CUSTOM_PHYSNET_B"
        "&required1=!CUSTOM_PHYSNET_A"
    )
    assert [list(r) for r in await cloud.requests(q)] == [["pf2"]]
    q = "resources1=SRIOV_NET_VF:1&required1=CUSTOM_PHYSNET_A&required1=!CUSTOM_PHYSNET_B"
    assert sorted(next(iter(r)) for r in await cloud.requests(q, "1.38")) == ["pf1", "pf3"]


async def test_limit_keeps_summaries_of_kept_trees(cloud: Cloud) -> None:
    body = await cloud.candidates("resources=VCPU:1&limit=2", "1.34")
    assert len(body["allocation_requests"]) == 2
    kept = {
        cloud.name_of(rp)
        for request in body["allocation_requests"]
        for rp in request["allocations"]
    }
    trees = {"cn1": {"cn1"}, "cn2": {"cn2"}, "cn3": {"cn3", "pf1", "pf2", "numa0", "pf3"}}
    expected = set().union(*(trees[name] for name in kept))
    assert {cloud.name_of(rp) for rp in body["provider_summaries"]} == expected


async def test_response_forms(cloud: Cloud) -> None:
    body = await cloud.candidates("resources=VCPU:1,DISK_GB:10", "1.10")
    assert all(isinstance(r["allocations"], list) for r in body["allocation_requests"])
    summaries = body["provider_summaries"]
    assert set(summaries[cloud.uuid("cn2")]) == {"resources"}
    assert set(summaries[cloud.uuid("cn2")]["resources"]) == {"VCPU", "DISK_GB"}
    body = await cloud.candidates("resources=VCPU:1,DISK_GB:10", "1.27")
    assert set(body["provider_summaries"][cloud.uuid("cn2")]) == {"resources", "traits"}
    assert set(body["provider_summaries"][cloud.uuid("cn2")]["resources"]) == {
        "VCPU", "MEMORY_MB", "DISK_GB"
    }
    assert all("mappings" not in r for r in body["allocation_requests"])
    response = await cloud.client.get(
        "/allocation_candidates?resources=VCPU:1", headers=microversion("1.15")
    )
    assert response.headers["cache-control"] == "no-cache"
    assert "last-modified" in response.headers
    response = await cloud.client.get(
        "/allocation_candidates?resources=VCPU:1", headers=microversion("1.14")
    )
    assert "cache-control" not in response.headers


async def test_capacity_and_usage(cloud: Cloud) -> None:
    consumer = str(uuid.uuid4())
    response = await cloud.client.put(
        f"/allocations/{consumer}",
        json={
            "allocations": {cloud.uuid("cn1"): {"resources": {"VCPU": 6}}},
            "project_id": str(uuid.uuid4()),
            "user_id": str(uuid.uuid4()),
            "consumer_generation": None,
            "consumer_type": "INSTANCE",
        },
    )
    assert response.status_code == 204, response.text
    names = [next(iter(r)) for r in await cloud.requests("resources=VCPU:3")]
    assert sorted(names) == ["cn2", "cn3"]
    body = await cloud.candidates("resources=VCPU:2")
    assert body["provider_summaries"][cloud.uuid("cn1")]["resources"]["VCPU"] == {
        "capacity": 8, "used": 6
    }


# -- errors (spec §12.2) ----------------------------------------------------------------------

BAD = [
    ("1.10", "resources=VCPU:1&limit=5", "'limit' was unexpected", None),
    ("1.10", "limit=5", "'resources' is a required property", None),
    ("1.16", "resources=VCPU:1&limit=0", "Failed validating 'pattern'", None),
    ("1.25", "resources01=VCPU:1", "'resources01' does not match any of the regexes", None),
    ("1.25", "resources=VCPU:1&group_policy=x", "'x' is not one of ['none', 'isolate']", None),
    ("1.35", "resources=VCPU:1&root_required=A&root_required=B",
     "may be specified only once", "placement.query.duplicate_key"),
    ("1.39", "resources=VCPU:1&root_required=in:HW_CPU_X86_AVX",
     "only supported since microversion 1.39", "placement.undefined_code"),
    ("1.35", "resources=VCPU:1&root_required=HW_CPU_X86_AVX,!HW_CPU_X86_AVX",
     "Conflicting required and forbidden traits found in root_required: HW_CPU_X86_AVX",
     "placement.query.bad_value"),
    ("1.36", "resources1=VCPU:1&same_subtree=1,", "Empty string (unsuffixed group)",
     "placement.query.bad_value"),
    ("1.36", "required1=HW_CPU_X86_AVX&same_subtree=1",
     "There must be at least one resources", "placement.query.missing_value"),
    ("1.36", "resources=VCPU:1&required1=HW_CPU_X86_AVX",
     "bad group(s) - ['1']", "placement.query.bad_value"),
    ("1.36", "resources=VCPU:1&same_subtree=_X",
     "Real suffixes should be specified in `same_subtree`: ['_X'] not found in ['']",
     "placement.query.bad_value"),
    ("1.31", "resources=VCPU:1&in_tree1=" + str(uuid.uuid4()),
     "All request groups must specify resources.", None),
    ("1.25", "group_policy=none", "At least one request group", None),
    ("1.39", "resources=VCPU:1&required=in:HW_CPU_X86_AVX&required=!HW_CPU_X86_AVX",
     "Conflicting required and forbidden traits found in the following traits keys: "
     "required: (HW_CPU_X86_AVX)", "placement.undefined_code"),
    ("1.39", "resources=NOPE:1", "No such resource class NOPE.", "placement.undefined_code"),
    ("1.39", "resources=VCPU:1&required=CUSTOM_NOPE", "No such trait(s): CUSTOM_NOPE.", None),
    ("1.39", "resources=VCPU:1&root_required=CUSTOM_NOPE", "No such trait(s): CUSTOM_NOPE.",
     None),
    ("1.31", "resources=VCPU:1&in_tree=nope", "Expected 'in_tree' parameter to be a format",
     None),
    ("1.23", f"resources=VCPU:1&member_of={uuid.uuid4()}&member_of={uuid.uuid4()}",
     "Multiple member_of parameters are not supported", None),
]


@pytest.mark.parametrize(("v", "query", "text", "code"), BAD)
async def test_bad_requests(
    client: httpx.AsyncClient, v: str, query: str, text: str, code: str | None
) -> None:
    response = await client.get(f"/allocation_candidates?{query}", headers=microversion(v))
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert text in error["detail"]
    if code:
        assert error["code"] == code


async def test_version_gate_and_accept(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/allocation_candidates?resources=VCPU:1", headers=microversion("1.9")
    )
    assert response.status_code == 404
    response = await client.get(
        "/allocation_candidates?resources=VCPU:1", headers={"accept": "text/plain"}
    )
    assert response.status_code == 406


async def test_earlier_empty_group_hides_later_unknown_names(cloud: Cloud) -> None:
    """The reference stops at the first group that matches nothing."""
    unknown_agg = str(uuid.uuid4())
    assert await cloud.requests(
        f"resources=VCPU:1&member_of={unknown_agg}&required=CUSTOM_NOPE"
    ) == []
    assert await cloud.requests(
        "resources=VCPU:99999&resources1=NOPE:1&group_policy=none"
    ) == []
    response = await cloud.client.get(
        "/allocation_candidates?resources1=NOPE:1&resources=VCPU:99999&group_policy=none"
    )
    assert response.status_code == 400
    assert "No such resource class NOPE" in response.text
    response = await cloud.client.get(
        "/allocation_candidates?resources=VCPU:1&required=CUSTOM_NOPE&resources1=NOPE:1"
        "&group_policy=none"
    )
    assert "No such trait(s): CUSTOM_NOPE" in response.text


async def test_empty_answers(cloud: Cloud) -> None:
    empty: dict[str, Any] = {"allocation_requests": [], "provider_summaries": {}}
    assert await cloud.candidates(f"resources=VCPU:1&in_tree={uuid.uuid4()}") == empty
    assert await cloud.candidates(f"resources=VCPU:1&member_of={uuid.uuid4()}") == empty
    assert await cloud.candidates("resources=VCPU:1000") == empty


# -- larger clouds: forbidden traits with trees, limit, max_allocation_candidates -------------

async def build_flat(client: httpx.AsyncClient, count: int, nested: int = 0) -> Cloud:
    cloud = Cloud(client)
    for i in range(count):
        traits = ("HW_CPU_X86_AVX2",) if i % 2 else ("HW_CPU_X86_AVX2", "STORAGE_DISK_SSD")
        await cloud.provider(
            f"cn{i}", {"VCPU": 8, "MEMORY_MB": 4096, "DISK_GB": 100}, traits, ("AGG",)
        )
    for t in range(nested):
        await cloud.provider(f"t{t}", {"DISK_GB": 100}, ("COMPUTE_VOLUME_MULTI_ATTACH",))
        await cloud.provider(f"t{t}n0", {"VCPU": 4, "MEMORY_MB": 2048}, ("HW_NUMA_ROOT",),
                             parent=f"t{t}")
    return cloud


async def test_forbidden_trait_with_nested_providers(client: httpx.AsyncClient) -> None:
    cloud = await build_flat(client, 6, nested=2)
    agg = cloud.agg("AGG")
    q = f"resources=VCPU:1,MEMORY_MB:256,DISK_GB:10&member_of={agg}&required=!STORAGE_DISK_SSD"
    names = sorted(next(iter(r)) for r in await cloud.requests(q))
    assert names == ["cn1", "cn3", "cn5"]
    # the trees: VCPU/MEMORY_MB from the NUMA child, DISK_GB from the root
    q = "resources=VCPU:1,MEMORY_MB:256,DISK_GB:10&required=!STORAGE_DISK_SSD"
    requests = await cloud.requests(q)
    assert len(requests) == 5
    assert {"t0": {"DISK_GB": 10}, "t0n0": {"VCPU": 1, "MEMORY_MB": 256}} in requests


async def test_limit_stops_early_and_is_exact(client: httpx.AsyncClient) -> None:
    cloud = await build_flat(client, 12, nested=3)
    q = "resources=VCPU:1,MEMORY_MB:256,DISK_GB:10"
    everything = await cloud.requests(q)
    assert len(everything) == 15
    for limit in (1, 5, 14, 15, 40):
        body = await cloud.candidates(f"{q}&limit={limit}")
        assert len(body["allocation_requests"]) == min(limit, 15)
        used = {
            rp for request in body["allocation_requests"] for rp in request["allocations"]
        }
        roots = {body["provider_summaries"][rp]["root_provider_uuid"] for rp in used}
        assert {
            rp for rp, summary in body["provider_summaries"].items()
            if summary["root_provider_uuid"] in roots
        } == set(body["provider_summaries"])


@pytest.fixture
async def capped_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    capped = settings.model_copy(
        update={"max_allocation_candidates": 4, "randomize_allocation_candidates": True}
    )
    async with app_client(capped, ADMIN_LATEST) as http_client:
        yield http_client


async def test_max_allocation_candidates(capped_client: httpx.AsyncClient) -> None:
    cloud = await build_flat(capped_client, 10)
    body = await cloud.candidates("resources=VCPU:1")
    assert len(body["allocation_requests"]) == 4
    assert len(body["provider_summaries"]) == 4
    body = await cloud.candidates("resources=VCPU:1&limit=2")
    assert len(body["allocation_requests"]) == 2
    assert len(body["provider_summaries"]) == 2


# -- windows: a bounded answer is the prefix of the unbounded one -------------------------

WINDOW_QUERIES = [
    "resources=VCPU:1",
    "resources=VCPU:1,DISK_GB:10",
    "resources=DISK_GB:10",
    "resources=VCPU:1,SRIOV_NET_VF:1",
    "resources=VCPU:1&resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=none",
    "resources1=VCPU:1&resources2=DISK_GB:10&group_policy=isolate",
    "resources=VCPU:1&required_N=CUSTOM_NUMA&same_subtree=_N",
    "resources=VCPU:1,MEMORY_MB:64&required=!CUSTOM_ROOT_GOLD",
]


async def test_windows_give_the_prefix_of_the_whole_answer(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        await cloud.provider(
            f"extra{i}", {"VCPU": 4, "MEMORY_MB": 1024, "DISK_GB": 50}, (), ("A",)
        )
    await cloud.provider("late", {"SRIOV_NET_VF": 2}, parent="cn3")
    from app.services.candidates import search

    monkeypatch.setattr(search, "FIRST_WINDOW", 1)
    for query in WINDOW_QUERIES:
        whole = (await cloud.candidates(query))["allocation_requests"]
        assert whole, query
        for limit in (1, 2, 3, len(whole), len(whole) + 5):
            body = await cloud.candidates(f"{query}&limit={limit}")
            assert body["allocation_requests"] == whole[:limit], (query, limit)
            used = {
                rp for request in body["allocation_requests"] for rp in request["allocations"]
            }
            roots = {body["provider_summaries"][rp]["root_provider_uuid"] for rp in used}
            assert {
                s["root_provider_uuid"] for s in body["provider_summaries"].values()
            } == roots


async def test_sharing_provider_inside_a_tree(client: httpx.AsyncClient) -> None:
    """A child provider may share too (the reference answers 500 here)."""
    cloud = Cloud(client)
    await cloud.provider("host", {"VCPU": 4}, (), ("S",))
    await cloud.provider("rack", None, (), ())
    await cloud.provider(
        "nas", {"DISK_GB": 100}, ("MISC_SHARES_VIA_AGGREGATE",), ("S",), parent="rack"
    )
    assert canon(await cloud.requests("resources=VCPU:1,DISK_GB:10")) == expect(
        {"host": {"VCPU": 1}, "nas": {"DISK_GB": 10}}
    )
    body = await cloud.candidates("resources=VCPU:1,DISK_GB:10")
    # the sharing provider's own tree is summarized with the anchor's
    assert {cloud.name_of(rp) for rp in body["provider_summaries"]} == {"host", "rack", "nas"}
    assert canon(await cloud.requests("resources=DISK_GB:10")) == expect(
        {"nas": {"DISK_GB": 10}}
    )


async def test_limit_below_1_29_summarizes_every_request_of_the_kept_trees(cloud: Cloud) -> None:
    """Below 1.29 summaries list the providers of the requests; when ``limit``
    drops some, those of any request found in a kept request's tree stay."""
    body = await cloud.candidates("resources=SRIOV_NET_VF:1&limit=1", "1.28")
    assert len(body["allocation_requests"]) == 1
    assert {cloud.name_of(rp) for rp in body["provider_summaries"]} == {"pf1", "pf2", "pf3"}
    body = await cloud.candidates("resources=SRIOV_NET_VF:1&limit=1", "1.29")
    assert {cloud.name_of(rp) for rp in body["provider_summaries"]} == {
        "cn3", "pf1", "pf2", "numa0", "pf3"
    }
    body = await cloud.candidates("resources=VCPU:1&limit=1", "1.28")
    assert len(body["provider_summaries"]) == 1


async def test_keys_follow_the_query_group_order(cloud: Cloud) -> None:
    """Allocations and mappings are keyed in the order the query names the groups,
    as the reference keys them: error texts echo bodies built from these answers."""
    q = "resources_NET=SRIOV_NET_VF:1&required_NET=CUSTOM_PHYSNET_A&resources=VCPU:1"
    body = await cloud.candidates(f"{q}&in_tree={cloud.uuid('cn3')}", "1.36")
    for request in body["allocation_requests"]:
        assert list(request["mappings"]) == ["_NET", ""]
        assert [cloud.name_of(rp) for rp in request["allocations"]][-1] == "cn3"
    q = "resources=VCPU:1&resources_NET=SRIOV_NET_VF:1&required_NET=CUSTOM_PHYSNET_A"
    body = await cloud.candidates(f"{q}&in_tree={cloud.uuid('cn3')}", "1.36")
    for request in body["allocation_requests"]:
        assert list(request["mappings"]) == ["", "_NET"]
        assert cloud.name_of(next(iter(request["allocations"]))) == "cn3"
