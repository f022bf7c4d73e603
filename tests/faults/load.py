"""Claims load against a live server, every answer recorded, and the checks.

``ClaimsLoad`` runs concurrent clients, each on its own keep-alive connection:
it claims one VCPU for a new consumer on a random provider, or deletes one of
its consumers. Every request is recorded with the phase it started in; the
state of each consumer (present, absent, unknown after an ambiguous answer) is
what the invariants are checked against at the end.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
PROJECT = str(uuid.uuid4())
USER = str(uuid.uuid4())
# Statuses that leave a consumer's state as the client knew it.
NOTHING_CHANGED = frozenset({400, 404, 409})


@dataclass
class Answer:
    phase: str
    started: float
    ended: float
    status: int | str  # an HTTP status, "dropped" (no answer) or "gave up" (timeout)


@dataclass
class ClaimsLoad:
    base_url: str
    providers: list[str]
    clients: int = 16
    held_per_client: int = 12
    phase: str = "baseline"
    answers: list[Answer] = field(default_factory=list)
    # consumer -> True (allocations committed), False (none), None (unknown)
    consumers: dict[str, bool | None] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _request(self, client: httpx.AsyncClient, method: str, path: str,
                       body: object = None) -> int | str:
        started = time.monotonic()
        phase = self.phase
        status: int | str
        try:
            response = await client.request(method, path, json=body)
            status = response.status_code
        except httpx.TimeoutException:
            status = "gave up"
        except httpx.TransportError:
            status = "dropped"
        self.answers.append(Answer(phase, started, time.monotonic(), status))
        return status

    async def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        held: list[str] = []
        async with httpx.AsyncClient(base_url=self.base_url, headers=HEADERS,
                                     timeout=60.0) as client:
            while not self._stop.is_set():
                if len(held) < self.held_per_client and (not held or rng.random() < 0.7):
                    consumer = str(uuid.uuid4())
                    provider = rng.choice(self.providers)
                    body = {"allocations": {provider: {"resources": {"VCPU": 1}}},
                            "project_id": PROJECT, "user_id": USER,
                            "consumer_generation": None, "consumer_type": "INSTANCE"}
                    status = await self._request(client, "PUT", f"/allocations/{consumer}",
                                                 body)
                    if status == 204:
                        self.consumers[consumer] = True
                        held.append(consumer)
                    elif status in NOTHING_CHANGED:
                        self.consumers[consumer] = False
                    else:
                        self.consumers[consumer] = None
                else:
                    consumer = held.pop(rng.randrange(len(held)))
                    status = await self._request(client, "DELETE", f"/allocations/{consumer}")
                    if status == 204:
                        self.consumers[consumer] = False
                    elif status in NOTHING_CHANGED:
                        held.append(consumer)
                    else:
                        self.consumers[consumer] = None
                if isinstance(status, str) or status >= 500:
                    await asyncio.sleep(0.05)  # as a client backing off a little

    async def run(self) -> None:
        await asyncio.gather(*(self._client(n) for n in range(self.clients)))

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------ figures

    def of_phase(self, phase: str) -> list[Answer]:
        return [a for a in self.answers if a.phase == phase]

    def statuses(self, phase: str) -> Counter[int | str]:
        return Counter(a.status for a in self.of_phase(phase))

    def longest_wait(self, phase: str) -> float:
        return max((a.ended - a.started for a in self.of_phase(phase)), default=0.0)

    def recovery(self, phase: str, healed_at: float, next_fault_at: float) -> float:
        """Seconds from the fault's removal to the end of the last failed answer
        (of the requests of the phase answered before the next fault began)."""
        failed = [a.ended for a in self.of_phase(phase)
                  if (isinstance(a.status, str) or a.status >= 500)
                  and a.ended <= next_fault_at]
        return max([0.0, *(end - healed_at for end in failed)])


async def _get_idempotent(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """A GET, sent again once if its kept-alive connection was closed under it
    (as HTTP clients do for idempotent requests): the invariant check reads
    state; dropped answers are counted by the load itself, not here."""
    try:
        return await client.get(path)
    except httpx.TransportError:
        return await client.get(path)


async def check_invariants(load: ClaimsLoad, capacity: int) -> list[str]:
    """What is wrong with the allocations now (empty: every invariant holds):
    no provider over its capacity, usages equal to the sum of allocations,
    every consumer's allocations as its last certain answer said."""
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=load.base_url, headers=HEADERS,
                                 timeout=60.0) as client:
        for provider in load.providers:
            usages = (await _get_idempotent(
                client, f"/resource_providers/{provider}/usages")).json()
            used = usages["usages"].get("VCPU", 0)
            allocations = (await _get_idempotent(
                client, f"/resource_providers/{provider}/allocations")).json()["allocations"]
            summed = sum(a["resources"].get("VCPU", 0) for a in allocations.values())
            if used > capacity:
                problems.append(f"{provider}: {used} VCPU used of {capacity}")
            if used != summed:
                problems.append(f"{provider}: usages {used} != sum of allocations {summed}")
        semaphore = asyncio.Semaphore(16)

        async def check(consumer: str, expected: bool | None) -> None:
            if expected is None:
                return
            async with semaphore:
                response = await _get_idempotent(client, f"/allocations/{consumer}")
            present = bool(response.json()["allocations"])
            if present != expected:
                problems.append(f"consumer {consumer}: present={present}, "
                                f"its last answer said {expected}")

        await asyncio.gather(*(check(c, e) for c, e in list(load.consumers.items())))
    return problems
