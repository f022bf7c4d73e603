"""The Galera fixtures: the cluster (one per module) and a fresh database on it.

The cluster takes half a minute to start and three cores' worth of work to
load: these tests run under ``make test-galera`` (PLACEMENT_TEST_GALERA=1, its
own CI step), not in every suite run.
"""

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.galera.cluster import GaleraCluster, galera_available


@pytest.fixture(scope="module")
def galera() -> Iterator[GaleraCluster]:
    if not os.environ.get("PLACEMENT_TEST_GALERA"):
        pytest.skip("the Galera tests run under make test-galera")
    missing = galera_available()
    if missing:
        pytest.skip(missing)
    cluster = GaleraCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def galera_database(galera: GaleraCluster) -> Iterator[str]:
    """A new database (created through node 0, replicated to all); its name."""
    name = f"placement_galera_{uuid.uuid4().hex[:10]}"
    galera.nodes[0].sql(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        for node in galera.nodes:
            if node.state() == "Synced":
                node.sql(f"DROP DATABASE IF EXISTS `{name}`")
                break
