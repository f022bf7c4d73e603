"""Lag-tolerant reads go to the standby; claims and the rest to the primary.

With the standby's replay paused, whatever the app writes after the pause is
on the primary only: an answer without it came from the standby, an answer
with it from the primary.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.db.replica import ReadReplica
from app.settings import Settings
from tests.allocation_helpers import body
from tests.api_helpers import ADMIN_LATEST, asgi_client, make_provider, new_uuid, running_app
from tests.replica.cluster import StandbyPair, free_ports

VCPU = {"VCPU": {"total": 8}}


def _settings(pair: StandbyPair, database: str, **overrides: object) -> Settings:
    # The read URL in placement.conf's synchronous form, as an operator writes it.
    read_url = f"postgresql+psycopg2://postgres@127.0.0.1:{pair.standby.port}/{database}"
    values: dict[str, object] = {
        "database_url": pair.primary.url(database),
        "database_read_url": read_url,
        "auth_strategy": "noauth2",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def _client(
    pair: StandbyPair, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, ReadReplica]]:
    async with running_app(settings) as app, asgi_client(app, ADMIN_LATEST) as client:
        replica = app.state.read_database
        assert isinstance(replica, ReadReplica)
        pair.wait_replayed()  # the schema the app just synced
        yield client, replica


async def _listed(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/resource_providers")
    assert response.status_code == 200, response.text
    return {rp["uuid"] for rp in response.json()["resource_providers"]}


async def _candidates(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/allocation_candidates", params={"resources": "VCPU:1"})
    assert response.status_code == 200, response.text
    return set(response.json()["provider_summaries"])


async def test_lists_candidates_and_usages_come_from_the_standby(
    pair: StandbyPair, replica_database: str
) -> None:
    async with _client(pair, _settings(pair, replica_database)) as (client, replica):
        before = await make_provider(client, VCPU)
        pair.wait_replayed()
        assert await _listed(client) == {before}

        pair.pause_replay()
        after = await make_provider(client, VCPU)
        claimed = await client.put(f"/allocations/{new_uuid()}", json=body({before: {"VCPU": 3}}))
        assert claimed.status_code == 204, claimed.text

        # The standby has neither the new provider nor the claim.
        assert await _listed(client) == {before}
        assert await _candidates(client) == {before}
        usage = await client.get(f"/resource_providers/{before}/usages")
        assert usage.json()["usages"] == {"VCPU": 0}
        totals = await client.get("/usages", params={"project_id": "p1"})
        assert totals.json()["usages"] == {}
        # A provider's own document, which a client's next write depends on: the primary.
        shown = await client.get(f"/resource_providers/{after}")
        assert shown.status_code == 200, shown.text
        assert replica.fallbacks == 0

        pair.resume_replay()
        pair.wait_replayed()
        assert await _listed(client) == {before, after}
        usage = await client.get(f"/resource_providers/{before}/usages")
        assert usage.json()["usages"] == {"VCPU": 3}


async def test_claims_see_fresh_data_while_the_standby_lags(
    pair: StandbyPair, replica_database: str
) -> None:
    async with _client(pair, _settings(pair, replica_database)) as (client, _):
        pair.pause_replay()
        # A provider the standby has never seen: claims against it work.
        rp = await make_provider(client, VCPU)
        first, second = new_uuid(), new_uuid()
        response = await client.put(f"/allocations/{first}", json=body({rp: {"VCPU": 6}}))
        assert response.status_code == 204, response.text
        # Capacity is checked against the primary's usage (6 of 8 taken): 409.
        response = await client.put(f"/allocations/{second}", json=body({rp: {"VCPU": 4}}))
        assert response.status_code == 409, response.text
        # Concurrent claims on disjoint slices all land, in the primary's order.
        results = await asyncio.gather(*(
            client.post("/allocations", json={
                new_uuid(): body({rp: {"VCPU": 1}}),
            }) for _ in range(3)
        ))
        assert sorted(r.status_code for r in results) == [204, 204, 409], \
            [r.text for r in results]
        # The consumer's generation comes from the primary: an update with it succeeds.
        current = await client.get(f"/allocations/{first}")
        assert current.json()["allocations"][rp]["resources"] == {"VCPU": 6}
        generation = current.json()["consumer_generation"]
        response = await client.put(
            f"/allocations/{first}", json=body({rp: {"VCPU": 5}}, generation))
        assert response.status_code == 204, response.text
        # The standby still has no such provider.
        assert await _candidates(client) == set()


async def test_an_unreachable_standby_falls_back_to_the_primary(
    pair: StandbyPair, replica_database: str
) -> None:
    (closed,) = free_ports(1, start=pair.standby.port + 1)
    settings = _settings(
        pair, replica_database,
        database_read_url=f"postgresql://postgres@127.0.0.1:{closed}/{replica_database}",
    )
    async with running_app(settings) as app, asgi_client(app, ADMIN_LATEST) as client:
        replica = app.state.read_database
        rp = await make_provider(client, VCPU)
        assert await _listed(client) == {rp}
        assert await _candidates(client) == {rp}
        # The snapshot's later checks (one statement each) read the primary too.
        other = await make_provider(client, VCPU)
        assert await _candidates(client) == {rp, other}
        # The first read found it down; the next ones do not try it again.
        assert replica.fallbacks == 1


async def test_a_standby_past_the_lag_bound_is_skipped(
    pair: StandbyPair, replica_database: str
) -> None:
    settings = _settings(pair, replica_database, database_read_max_lag=0.5)
    async with _client(pair, settings) as (client, replica):
        first = await make_provider(client, VCPU)
        pair.wait_replayed()
        assert await _listed(client) == {first}
        pair.pause_replay()
        second = await make_provider(client, VCPU)
        # Within the bound the standby still answers, without the new provider...
        assert await _listed(client) == {first}
        # ...past it (and past the once-a-second look at the lag), the primary does.
        await asyncio.sleep(1.6)
        assert await _listed(client) == {first, second}
        pair.resume_replay()
        pair.wait_replayed()
        await asyncio.sleep(1.1)
        await _listed(client)  # this one looks at the lag again
        assert not replica._lagging
