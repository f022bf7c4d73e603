"""The replica fixtures: a primary and hot standby (one pair per module) and a
fresh database on them.

The pair takes a few seconds to start: these tests run under ``make
test-replica`` (PLACEMENT_TEST_REPLICA=1, its own CI step), not in every suite run.
"""

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.replica.cluster import StandbyPair, postgres_bin


@pytest.fixture(scope="module")
def pair() -> Iterator[StandbyPair]:
    if not os.environ.get("PLACEMENT_TEST_REPLICA"):
        pytest.skip("the read-replica tests run under make test-replica")
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (initdb, pg_basebackup)")
    standby_pair = StandbyPair().start()
    try:
        yield standby_pair
    finally:
        standby_pair.stop()


@pytest.fixture
def replica_database(pair: StandbyPair) -> Iterator[str]:
    """A new database on the primary, already replayed on the standby; its name."""
    name = f"placement_replica_{uuid.uuid4().hex[:10]}"
    pair.primary.sql(f'CREATE DATABASE "{name}"')
    pair.wait_replayed()
    try:
        yield name
    finally:
        pair.resume_replay()
        pair.primary.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
