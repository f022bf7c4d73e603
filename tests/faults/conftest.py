"""The fault tests' private PostgreSQL cluster and a server with two workers on it.

They restart and stop that cluster and take a minute and a half: they run under
``make test-faults`` (PLACEMENT_TEST_FAULTS=1, the ``faults`` step of .ci/run),
not in every suite run.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.cluster import PrivateCluster, postgresql_bindir
from tests.live_server import LiveServer

# Short bounds, so that the held-lock phase shows them at work in seconds.
SERVER_ENV = {
    "PLACEMENT_DB_LOCK_TIMEOUT": "2",
    "PLACEMENT_DB_POOL_TIMEOUT": "3",
    "PLACEMENT_DB_STATEMENT_TIMEOUT_WRITE": "5",
    "PLACEMENT_DB_STATEMENT_TIMEOUT_READ": "5",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    if not os.environ.get("PLACEMENT_TEST_FAULTS"):
        pytest.skip("the fault-injection tests run under make test-faults")
    if postgresql_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    cluster = PrivateCluster().start()
    try:
        cluster.create_database()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def server(cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[LiveServer]:
    # PLACEMENT_FAULTS_DIR keeps the server's log for reading afterwards.
    kept = os.environ.get("PLACEMENT_FAULTS_DIR")
    directory = Path(kept) if kept else tmp_path_factory.mktemp("faults")
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "server.log"
    live = LiveServer(cluster.url, log, args=("--workers", "2"), env=SERVER_ENV,
                      ready_answers=4)
    with live:
        yield live
