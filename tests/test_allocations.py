"""Allocations (spec §10, §2.10, §2.11, quirks Q4/Q12) through the API."""

import re
from typing import cast

import httpx
import pytest
from fastapi import FastAPI

from app.db.database import ProviderGenerationRace
from app.db.repositories.claim_writes import ClaimWrites
from app.services import claims as claims_service
from app.settings import Settings
from tests.allocation_helpers import body
from tests.api_helpers import error, generation, make_provider, new_uuid, usages
from tests.sent_statements import sent_through_asyncpg, sent_through_sqlalchemy

V1_0 = {"openstack-api-version": "placement 1.0"}
V1_7 = {"openstack-api-version": "placement 1.7"}
V1_12 = {"openstack-api-version": "placement 1.12"}
V1_27 = {"openstack-api-version": "placement 1.27"}
V1_28 = {"openstack-api-version": "placement 1.28"}
V1_37 = {"openstack-api-version": "placement 1.37"}

SMALL = {"VCPU": {"total": 8, "max_unit": 4}, "DISK_GB": {"total": 100, "min_unit": 10,
                                                          "step_size": 10, "max_unit": 50}}


async def test_list_form_and_incomplete_consumer(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, SMALL)
    consumer = new_uuid()
    response = await client.put(
        f"/allocations/{consumer}",
        headers=V1_7,
        json={"allocations": [
            {"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}},
            # listed twice: the later entry wins
            {"resource_provider": {"uuid": rp}, "resources": {"VCPU": 2}},
        ]},
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    old = (await client.get(f"/allocations/{consumer}", headers=V1_0)).json()
    assert old == {"allocations": {rp: {"generation": 2, "resources": {"VCPU": 2}}}}
    new = (await client.get(f"/allocations/{consumer}", headers=V1_12)).json()
    assert new["project_id"] == new["user_id"] == "00000000-0000-0000-0000-000000000000"
    latest = (await client.get(f"/allocations/{consumer}")).json()
    assert latest["consumer_generation"] == 1
    assert latest["consumer_type"] == "unknown"


async def test_unknown_consumer_reads_empty(client: httpx.AsyncClient) -> None:
    response = await client.get("/allocations/not-even-a-uuid")
    assert response.status_code == 200
    assert response.json() == {"allocations": {}}
    assert "last-modified" in response.headers


async def test_consumer_generations(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, SMALL)
    consumer = new_uuid()
    url = f"/allocations/{consumer}"
    conflict = await client.put(url, json=body({rp: {"VCPU": 1}}, 3))
    assert conflict.status_code == 409
    assert error(conflict)["code"] == "placement.concurrent_update"
    assert "consumer generation conflict - expected null but got 3" in error(conflict)["detail"]

    assert (await client.put(url, json=body({rp: {"VCPU": 1}}, None))).status_code == 204
    stale = await client.put(url, json=body({rp: {"VCPU": 2}}, None))
    assert stale.status_code == 409
    assert "expected 1 but got None" in error(stale)["detail"]
    assert (await client.put(url, json=body({rp: {"VCPU": 2}}, 1))).status_code == 204
    assert (await client.get(url)).json()["consumer_generation"] == 2
    # below 1.28 nothing is checked, the generation still moves
    old = {"allocations": {rp: {"resources": {"VCPU": 3}}}, "project_id": "p1", "user_id": "u1"}
    assert (await client.put(url, headers=V1_27, json=old)).status_code == 204
    assert (await client.get(url)).json()["consumer_generation"] == 3

    # an empty set deletes the allocations and the consumer
    assert (await client.put(url, json=body({}, 3))).status_code == 204
    assert (await client.get(url)).json() == {"allocations": {}}
    assert (await client.put(url, json=body({rp: {"VCPU": 1}}, None))).status_code == 204


async def test_empty_allocations_need_1_28(client: httpx.AsyncClient) -> None:
    consumer = new_uuid()
    response = await client.put(
        f"/allocations/{consumer}",
        headers={"openstack-api-version": "placement 1.27"},
        json={"allocations": {}, "project_id": "p", "user_id": "u"},
    )
    assert response.status_code == 400
    # The reference's validator words an empty object this way (allocations-1-12.yaml).
    assert "{} should be non-empty" in error(response)["detail"]


async def test_provider_generations(client: httpx.AsyncClient) -> None:
    """+1 for providers written to (also when cleared through {}), not for
    providers dropped implicitly nor by DELETE (Q4)."""
    rp1 = await make_provider(client, SMALL)
    rp2 = await make_provider(client, SMALL)
    consumer = new_uuid()
    url = f"/allocations/{consumer}"
    assert (await generation(client, rp1), await generation(client, rp2)) == (1, 1)
    await client.put(url, json=body({rp1: {"VCPU": 1}, rp2: {"VCPU": 1}}, None))
    assert (await generation(client, rp1), await generation(client, rp2)) == (2, 2)
    await client.put(url, json=body({rp2: {"VCPU": 2}}, 1))
    assert (await generation(client, rp1), await generation(client, rp2)) == (2, 3)
    assert await usages(client, rp1) == {"DISK_GB": 0, "VCPU": 0}
    await client.put(url, json=body({}, 2))
    assert (await generation(client, rp1), await generation(client, rp2)) == (2, 4)

    await client.put(url, json=body({rp1: {"VCPU": 1}}, None))
    assert (await client.delete(url)).status_code == 204
    assert await generation(client, rp1) == 3
    assert await usages(client, rp1) == {"DISK_GB": 0, "VCPU": 0}
    missing = await client.delete(url)
    assert missing.status_code == 404
    assert f"No allocations for consumer '{consumer}'" in error(missing)["detail"]


async def test_capacity_and_constraints(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, {"VCPU": {"total": 4, "reserved": 1,
                                               "allocation_ratio": 2.0}, **{
        "DISK_GB": SMALL["DISK_GB"]}})
    # capacity (4 - 1) * 2 = 6
    first, second = new_uuid(), new_uuid()
    assert (await client.put(f"/allocations/{first}",
                             json=body({rp: {"VCPU": 4}}, None))).status_code == 204
    over = await client.put(f"/allocations/{second}", json=body({rp: {"VCPU": 3}}, None))
    assert over.status_code == 409
    assert error(over)["code"] == "placement.undefined_code"
    assert (
        f"Unable to allocate inventory: Unable to create allocation for 'VCPU' on resource "
        f"provider '{rp}'. The requested amount would exceed the capacity."
    ) in error(over)["detail"]
    assert (await client.put(f"/allocations/{second}",
                             json=body({rp: {"VCPU": 2}}, None))).status_code == 204

    for amount in (5, 55, 15):  # below min_unit 10, above max_unit 50, off step 10
        bad = await client.put(f"/allocations/{new_uuid()}",
                               json=body({rp: {"DISK_GB": amount}}, None))
        assert bad.status_code == 409
        assert "would violate inventory constraints" in error(bad)["detail"]

    no_inventory = await client.put(f"/allocations/{new_uuid()}",
                                    json=body({rp: {"MEMORY_MB": 1}}, None))
    assert no_inventory.status_code == 409
    assert (f"Inventory for 'MEMORY_MB' on resource provider '{rp}' invalid."
            in error(no_inventory)["detail"])
    assert await usages(client, rp) == {"DISK_GB": 0, "VCPU": 6}


async def test_overcommit_may_shrink_not_grow(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, {"VCPU": {"total": 8}})
    consumer = new_uuid()
    url = f"/allocations/{consumer}"
    assert (await client.put(url, json=body({rp: {"VCPU": 6}}, None))).status_code == 204
    gen = await generation(client, rp)
    shrink = await client.put(
        f"/resource_providers/{rp}/inventories",
        json={"resource_provider_generation": gen, "inventories": {"VCPU": {"total": 4}}},
    )
    assert shrink.status_code == 200
    # still over capacity, but no worse than before: accepted
    assert (await client.put(url, json=body({rp: {"VCPU": 5}}, 1))).status_code == 204
    worse = await client.put(url, json=body({rp: {"VCPU": 6}}, 2))
    assert worse.status_code == 409
    assert "exceed the capacity" in error(worse)["detail"]
    assert await usages(client, rp) == {"VCPU": 5}


async def test_failed_claim_leaves_nothing(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, {"VCPU": {"total": 2}})
    consumer = new_uuid()
    url = f"/allocations/{consumer}"
    before = await generation(client, rp)
    for data in (
        body({rp: {"VCPU": 3}}, None),  # capacity
        body({rp: {"CUSTOM_NOPE": 1}}, None),  # unknown class
        body({rp: {"VCPU": 1}, new_uuid(): {"VCPU": 1}}, None),  # unknown provider (not Q1)
    ):
        response = await client.put(url, json=data)
        assert response.status_code in (400, 409), response.text
    assert await generation(client, rp) == before
    assert (await client.get(url)).json() == {"allocations": {}}
    # no consumer record was left behind: null is still the right generation
    assert (await client.put(url, json=body({rp: {"VCPU": 1}}, None))).status_code == 204


async def test_error_messages(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, SMALL)
    consumer = new_uuid()
    unknown_rp = new_uuid()
    missing = await client.put(f"/allocations/{consumer}", json=body({unknown_rp: {"VCPU": 1}}))
    assert missing.status_code == 400
    assert (f"Allocation for resource provider '{unknown_rp}' that does not exist."
            in error(missing)["detail"])
    bad_class = await client.put(f"/allocations/{consumer}", json=body({rp: {"COWS": 1}}))
    assert bad_class.status_code == 400
    assert (f"Unable to allocate inventory for consumer {consumer}: No such resource class "
            "COWS." in error(bad_class)["detail"])
    post = await client.post("/allocations", json={consumer: body({rp: {"COWS": 1}})})
    assert post.status_code == 400
    assert "Unable to allocate inventory No such resource class COWS." in error(post)["detail"]
    malformed = await client.put("/allocations/not-a-uuid", json=body({rp: {"VCPU": 1}}))
    assert malformed.status_code == 400
    assert "Malformed consumer_uuid: not-a-uuid" in error(malformed)["detail"]
    untyped = await client.put(f"/allocations/{consumer}",
                               json=body({rp: {"VCPU": 1}}, consumer_type=None))
    assert untyped.status_code == 400
    assert "'consumer_type' is a required property" in error(untyped)["detail"]
    wrong_type = await client.put(
        f"/allocations/{consumer}", json=body({rp: {"VCPU": 1}}, consumer_type="instance")
    )
    assert "'instance' does not match '^[A-Z0-9_]+$'" in error(wrong_type)["detail"]
    boolean = await client.put(f"/allocations/{consumer}", json=body({rp: {"VCPU": True}}))
    assert "True is not of type 'integer'" in error(boolean)["detail"]
    text = await client.put(f"/allocations/{consumer}", content=b"{}",
                            headers={"content-type": "text/plain"})
    assert text.status_code == 415


async def test_mapping_errors_name_the_member_as_the_reference_does(
    client: httpx.AsyncClient,
) -> None:
    """The detail is the reference's, byte for byte (its validator reports the
    failing mapping, or the failing entry of it, with that member's subschema)."""
    rp = await make_provider(client, SMALL)
    headers = {"openstack-api-version": "placement 1.34"}
    schema = (
        "Failed validating '{keyword}' in schema['properties']['mappings']"
        "['patternProperties']['[a-zA-Z0-9_-]{{1,64}}']{items}:     {subschema}"
        "  On instance['mappings']['alpha']{index}:     {value}  "
    )
    array = ("{'type': 'array',      'minItems': 1,      "
             "'items': {'type': 'string', 'format': 'uuid'}}")
    entry = "{'type': 'string', 'format': 'uuid'}"
    cases = [
        ("beta", "'beta' is not of type 'array'",
         dict(keyword="type", items="", subschema=array, index="", value="'beta'")),
        ([], "[] should be non-empty",
         dict(keyword="minItems", items="", subschema=array, index="", value="[]")),
        ([1], "1 is not of type 'string'",
         dict(keyword="type", items="['items']", subschema=entry, index="[0]", value="1")),
        (["x"], "'x' is not a 'uuid'",
         dict(keyword="format", items="['items']", subschema=entry, index="[0]", value="'x'")),
    ]
    for value, message, parts in cases:
        data = body({rp: {"VCPU": 1}}, consumer_type=None) | {"mappings": {"alpha": value}}
        response = await client.put(f"/allocations/{new_uuid()}", json=data, headers=headers)
        assert response.status_code == 400
        assert error(response)["detail"].endswith(
            f" JSON does not validate: {message}  {schema.format(**parts)}"
        ), error(response)["detail"]


async def test_path_uuid_normalised_only_on_put(client: httpx.AsyncClient) -> None:
    """Q12: PUT normalises the path consumer; GET and DELETE use it as given."""
    rp = await make_provider(client, SMALL)
    consumer = new_uuid()
    dashless = consumer.replace("-", "").upper()
    response = await client.put(f"/allocations/{dashless}", json=body({rp: {"VCPU": 1}}))
    assert response.status_code == 204
    assert (await client.get(f"/allocations/{dashless}")).json() == {"allocations": {}}
    assert (await client.get(f"/allocations/{consumer}")).json()["allocations"]
    assert (await client.delete(f"/allocations/{dashless}")).status_code == 404
    assert (await client.delete(f"/allocations/{consumer}")).status_code == 204


async def test_post_is_atomic(client: httpx.AsyncClient) -> None:
    rp1 = await make_provider(client, SMALL)
    rp2 = await make_provider(client, SMALL)
    instance, migration = new_uuid(), new_uuid()
    assert (await client.put(f"/allocations/{instance}",
                             json=body({rp1: {"VCPU": 2}}, None))).status_code == 204
    assert (await client.post("/allocations", headers=V1_12,
                              json={})).status_code == 404
    # move the allocation from the instance to a migration record, and a failing third
    failing = await client.post("/allocations", json={
        instance: body({rp2: {"VCPU": 2}}, 1),
        migration: body({rp1: {"VCPU": 2}}, None, consumer_type="MIGRATION"),
        new_uuid(): body({rp2: {"VCPU": 3}}, None),  # 2 + 3 > 4 (max_unit ok, capacity 8)
        new_uuid(): body({rp2: {"VCPU": 4}}, None),
    })
    assert failing.status_code == 409
    assert (await client.get(f"/allocations/{instance}")).json()["allocations"] == {
        rp1: {"generation": 2, "resources": {"VCPU": 2}}}
    assert (await client.get(f"/allocations/{migration}")).json() == {"allocations": {}}

    moved = await client.post("/allocations", json={
        instance: body({rp2: {"VCPU": 2}}, 1),
        migration: body({rp1: {"VCPU": 2}}, None, consumer_type="MIGRATION"),
    })
    assert moved.status_code == 204, moved.text
    assert await usages(client, rp1) == {"DISK_GB": 0, "VCPU": 2}
    assert await usages(client, rp2) == {"DISK_GB": 0, "VCPU": 2}
    migration_view = (await client.get(f"/allocations/{migration}")).json()
    assert migration_view["consumer_type"] == "MIGRATION"
    assert migration_view["consumer_generation"] == 1
    # {} for the migration clears it; its provider gets +1
    gen = await generation(client, rp1)
    cleared = await client.post("/allocations", json={migration: body({}, 1)})
    assert cleared.status_code == 204
    assert await generation(client, rp1) == gen + 1
    assert (await client.get(f"/allocations/{migration}")).json() == {"allocations": {}}


async def test_consumer_attributes_follow_writes(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, SMALL)
    consumer = new_uuid()
    url = f"/allocations/{consumer}"
    await client.put(url, json=body({rp: {"VCPU": 1}}, None, project="p1", user="u1"))
    await client.put(url, json=body({rp: {"VCPU": 1}}, 1, project="p2", user="u2",
                                    consumer_type="MIGRATION"))
    view = (await client.get(url)).json()
    assert (view["project_id"], view["user_id"], view["consumer_type"]) == (
        "p2", "u2", "MIGRATION")
    assert view["consumer_generation"] == 2
    # below 1.38 the type is left alone
    await client.put(url, headers=V1_37,
                     json=body({rp: {"VCPU": 2}}, 2, project="p2", user="u2",
                               consumer_type=None))
    assert (await client.get(url)).json()["consumer_type"] == "MIGRATION"


async def test_provider_allocations(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, SMALL)
    first, second = new_uuid(), new_uuid()
    await client.put(f"/allocations/{first}", json=body({rp: {"VCPU": 1, "DISK_GB": 20}}, None))
    await client.put(f"/allocations/{second}", json=body({rp: {"VCPU": 2}}, None))
    latest = (await client.get(f"/resource_providers/{rp}/allocations")).json()
    assert latest == {
        "resource_provider_generation": 3,
        "allocations": {
            first: {"resources": {"VCPU": 1, "DISK_GB": 20}, "consumer_generation": 1},
            second: {"resources": {"VCPU": 2}, "consumer_generation": 1},
        },
    }
    old = await client.get(f"/resource_providers/{rp}/allocations", headers=V1_27)
    assert old.json()["allocations"][second] == {"resources": {"VCPU": 2}}
    assert "last-modified" in old.headers
    assert "last-modified" not in (
        await client.get(f"/resource_providers/{rp}/allocations", headers=V1_12)).headers
    missing = await client.get(f"/resource_providers/{new_uuid()}/allocations")
    assert missing.status_code == 404
    assert "not found: No resource provider with uuid" in error(missing)["detail"]


async def test_methods(client: httpx.AsyncClient) -> None:
    response = await client.get("/allocations")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    response = await client.post(f"/allocations/{new_uuid()}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT, DELETE"


async def test_provider_race_is_retried_in_a_fresh_transaction(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    rp = await make_provider(client, SMALL)
    real_run = ClaimWrites.run
    calls = {"n": 0}

    async def flaky(writes, conn):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            await real_run(writes, conn)  # written, then rolled back
            raise ProviderGenerationRace("simulated")
        await real_run(writes, conn)

    monkeypatch.setattr(ClaimWrites, "run", flaky)
    # (the general path: the PostgreSQL fast path writes in its own statement)
    monkeypatch.setattr(claims_service, "fast_path_applies", lambda conn, claims: False)
    monkeypatch.setattr(claims_service, "one_shot_applies", lambda db, claims: False)
    consumer = new_uuid()
    response = await client.put(f"/allocations/{consumer}", json=body({rp: {"VCPU": 1}}))
    assert response.status_code == 204
    assert calls["n"] == 3
    # the two failed attempts left nothing behind
    assert await usages(client, rp) == {"DISK_GB": 0, "VCPU": 1}
    assert (await client.get(f"/allocations/{consumer}")).json()["consumer_generation"] == 1

    async def always(writes, conn):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise ProviderGenerationRace("simulated")

    monkeypatch.setattr(ClaimWrites, "run", always)
    calls["n"] = 0
    response = await client.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": 1}}))
    assert response.status_code == 409
    assert error(response)["code"] == "placement.concurrent_update"
    assert "Inventory and/or allocations changed" in error(response)["detail"]
    assert calls["n"] == 10  # settings.allocation_conflict_retry_count
    assert await usages(client, rp) == {"DISK_GB": 0, "VCPU": 1}


async def test_deleting_things_in_use(client: httpx.AsyncClient) -> None:
    rp = await make_provider(client, SMALL)
    await client.put("/resource_classes/CUSTOM_GOLD")
    gen = await generation(client, rp)
    await client.put(f"/resource_providers/{rp}/inventories", json={
        "resource_provider_generation": gen,
        "inventories": {**SMALL, "CUSTOM_GOLD": {"total": 5}}})
    consumer = new_uuid()
    await client.put(f"/allocations/{consumer}", json=body({rp: {"CUSTOM_GOLD": 1}}, None))
    provider = await client.delete(f"/resource_providers/{rp}")
    assert provider.status_code == 409
    assert error(provider)["code"] == "placement.resource_provider.inuse"
    inventory = await client.delete(f"/resource_providers/{rp}/inventories/CUSTOM_GOLD")
    assert inventory.status_code == 409
    assert (await client.delete("/resource_classes/CUSTOM_GOLD")).status_code == 409
    assert (await client.delete(f"/allocations/{consumer}")).status_code == 204
    assert (await client.delete(f"/resource_providers/{rp}")).status_code == 204


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _outcome(response: httpx.Response) -> tuple[int, str]:
    detail = error(response)["detail"] if response.status_code >= 400 else ""
    return response.status_code, UUID_RE.sub("U", detail)


async def _scripted_claims(client: httpx.AsyncClient) -> list[object]:
    """New-consumer claims that pass and fail in every way; what they did."""
    rp1 = await make_provider(client, {
        "VCPU": {"total": 8, "reserved": 2, "allocation_ratio": 1.5, "max_unit": 5},
        "DISK_GB": {"total": 100, "min_unit": 10, "step_size": 5, "max_unit": 60},
    })
    rp2 = await make_provider(client, {"VCPU": {"total": 2}})
    seen: list[object] = []
    for data in (
        body({rp1: {"VCPU": 5, "DISK_GB": 20}}),
        body({rp1: {"VCPU": 5}}),  # 10 > (8 - 2) * 1.5
        body({rp1: {"VCPU": 4}, rp2: {"VCPU": 2}}),  # exactly full
        body({rp1: {"DISK_GB": 12}}),  # step
        body({rp1: {"DISK_GB": 65}}),  # max_unit
        body({rp1: {"DISK_GB": 5}}),  # min_unit
        body({rp2: {"DISK_GB": 10}}),  # no such inventory
        body({rp2: {"CUSTOM_X": 1}}),  # no such class
        body({new_uuid(): {"VCPU": 1}}),  # no such provider
        body({rp1: {"DISK_GB": 60}, rp2: {"VCPU": 1}}),  # rp2 full
    ):
        seen.append(_outcome(await client.put(f"/allocations/{new_uuid()}", json=data)))
    for amounts in ((30, 55), (30, 50)):  # together 105 > 100; then 80
        seen.append(_outcome(await client.post("/allocations", json={
            new_uuid(): body({rp1: {"DISK_GB": amount}}) for amount in amounts})))
    seen.append(await usages(client, rp1))
    seen.append(await usages(client, rp2))
    seen.append((await generation(client, rp1), await generation(client, rp2)))
    return seen


async def test_fast_and_general_paths_agree(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """PostgreSQL claims new consumers with one statement (the fast path); it
    must answer exactly as the general path does."""
    real_fast_claim, real_fast_check = claims_service.fast_claim, claims_service.fast_check
    real_one_shot = claims_service.one_shot_claim
    fast_writes, fast_checks, one_shots = [], [], []

    async def one_shot(*args):  # type: ignore[no-untyped-def]
        outcome = await real_one_shot(*args)
        one_shots.append(outcome.value)
        return outcome

    async def counting(*args):  # type: ignore[no-untyped-def]
        done = await real_fast_claim(*args)
        fast_writes.append(done)
        return done

    async def checking(*args):  # type: ignore[no-untyped-def]
        ok = await real_fast_check(*args)
        fast_checks.append(ok)
        return ok

    monkeypatch.setattr(claims_service, "fast_claim", counting)
    monkeypatch.setattr(claims_service, "fast_check", checking)
    monkeypatch.setattr(claims_service, "one_shot_claim", one_shot)
    fast = await _scripted_claims(client)
    if settings.database_url.startswith("postgresql"):
        # one statement writes each claim it can (nobody races here); refusals
        # are worded by the general path, never reaching the locked fast path
        assert one_shots.count("wrote") == 3
        assert one_shots.count("refused") == 9
        assert fast_checks == []
        assert fast_writes == []
    # The locked fast path (what a claim runs after its one-shot statements raced)
    monkeypatch.setattr(claims_service, "one_shot_applies", lambda db, claims: False)
    locked = await _scripted_claims(client)
    if settings.database_url.startswith("postgresql"):
        # refusals are found by the unlocked check, and never reach the write
        assert fast_checks.count(True) == 3
        assert fast_checks.count(False) == 9
        assert fast_writes == [True] * 3
    assert fast == locked
    monkeypatch.setattr(claims_service, "fast_path_applies", lambda conn, claims: False)
    general = await _scripted_claims(client)
    assert fast == general
    outcomes = cast("list[tuple[int, object]]", fast[:12])
    assert [status for status, _ in outcomes] == [
        204, 409, 204, 409, 409, 409, 409, 400, 400, 409, 409, 204]
    assert fast[12:] == [{"DISK_GB": 100, "VCPU": 9}, {"VCPU": 2}, (4, 2)]


async def test_a_claim_of_a_new_consumer_is_one_statement(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL (asyncpg): the scheduler's claim is ONE statement, sent on the
    driver's own connection (no BEGIN, no COMMIT, no SQLAlchemy execution)."""
    if app.state.database.engine.dialect.driver != "asyncpg":
        pytest.skip("the one-statement claim runs on asyncpg's connection")
    rp = await make_provider(client, {"VCPU": {"total": 16}})
    first = await client.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": 1}}))
    assert first.status_code == 204, first.text  # the project and user now exist
    through_sqlalchemy = sent_through_sqlalchemy(app)
    sent = sent_through_asyncpg(monkeypatch)
    second = await client.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": 2}}))
    assert second.status_code == 204, second.text
    assert through_sqlalchemy == []
    assert len(sent) == 1, sent
    assert "claim_mark" in sent[0]
    assert "VALUES" in sent[0]  # its rows listed: one plan per shape, reused
    # Past the listed shapes (9 consumers here), the rows go as arrays.
    sent.clear()
    many = {new_uuid(): body({rp: {"VCPU": 1}}) for _ in range(9)}
    response = await client.post("/allocations", json=many)
    assert response.status_code == 204, response.text
    assert through_sqlalchemy == []
    assert len(sent) == 1, sent
    assert "unnest" in sent[0]
    assert (await usages(client, rp)) == {"VCPU": 12}
