"""No candidates answer shows a usage older than ``candidates_snapshot_max_age``.

A real server with 2 workers (each keeps its own snapshot). Claimers put
allocations of 1 VCPU on one provider, each for a new consumer, as fast as
they can, while readers ask for candidates. A read that started at ``t`` must
show every claim whose 204 arrived before ``t - max_age``: its ``used`` is at
least the number of those claims (usage only grows here). The worst lag seen
is printed: the age of the oldest claim an answer did not show yet.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.allocation_helpers import body as consumer_body
from tests.databases import TEST_SERVER_URL, scratch_database_sync
from tests.live_server import LiveServer

HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
SECONDS = 4.0
CLAIMERS = 4
READERS = 2


@pytest.fixture(params=[0.0, 1.0], ids=["max_age=0", "max_age=1"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, float]]:
    max_age = float(request.param)
    with scratch_database_sync(TEST_SERVER_URL, tmp_path, "h_c_stale") as url:
        live = LiveServer(url, tmp_path / "server.log", args=("--workers", "2"), ready_answers=2,
                          env={"PLACEMENT_CANDIDATES_SNAPSHOT_MAX_AGE": str(max_age)}).start()
        try:
            yield live, max_age
        finally:
            live.stop()


def test_no_answer_older_than_the_bound(server: tuple[LiveServer, float]) -> None:
    live, max_age = server
    with httpx.Client(base_url=live.url, headers=HEADERS, timeout=30.0) as client:
        rp = str(uuid.uuid4())
        assert client.post("/resource_providers", json={"name": "c", "uuid": rp}).status_code == 200
        put = client.put(f"/resource_providers/{rp}/inventories", json={
            "resource_provider_generation": 0, "inventories": {"VCPU": {"total": 100_000}}})
        assert put.status_code == 200, put.text
    claimed: list[float] = []  # when each claim's 204 arrived
    reads: list[tuple[float, int]] = []  # (start, used shown)
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS
    failures: list[str] = []

    def claimer() -> None:
        with httpx.Client(base_url=live.url, headers=HEADERS, timeout=30.0) as client:
            while time.monotonic() < stop:
                response = client.put(f"/allocations/{uuid.uuid4()}",
                                      json=consumer_body({rp: {"VCPU": 1}}))
                done = time.monotonic()
                if response.status_code != 204:
                    failures.append(response.text)
                    return
                with lock:
                    claimed.append(done)

    def reader() -> None:
        with httpx.Client(base_url=live.url, headers=HEADERS, timeout=30.0) as client:
            while time.monotonic() < stop:
                start = time.monotonic()
                response = client.get("/allocation_candidates?resources=VCPU:1")
                if response.status_code != 200:
                    failures.append(response.text)
                    return
                used = response.json()["provider_summaries"][rp]["resources"]["VCPU"]["used"]
                with lock:
                    reads.append((start, used))

    threads = [threading.Thread(target=claimer) for _ in range(CLAIMERS)]
    threads += [threading.Thread(target=reader) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:3]
    claimed.sort()
    worst_lag = 0.0
    for start, used in reads:
        seen_before = sum(1 for done in claimed if done < start)
        if used < seen_before:
            # The (used+1)-th claim to complete is not in the answer: its age at the read.
            worst_lag = max(worst_lag, start - claimed[used])
    print(f"\nmax_age={max_age}: {len(claimed)} claims, {len(reads)} reads, "
          f"worst lag {worst_lag * 1000:.0f} ms")
    assert len(claimed) >= 20
    assert len(reads) >= 10
    assert worst_lag <= max_age
