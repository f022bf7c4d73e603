"""Round trip with the reference, both ways, on the suite's database (SQLite by
default, PostgreSQL under ``make test-pg``, MariaDB under ``make test-mysql``).

* Reference -> project: the reference's ``placement-manage db sync`` creates the
  database, the reference serves and writes a small cloud; the project adopts
  the database and answers every read as the reference did.
* Project -> reference: the project creates the database and writes the same
  cloud; the reference's ``placement-manage db sync`` accepts it as current
  (exit 0, no manual ``db stamp``), the reference serves it and answers every
  read as the project did, and the project still serves it afterwards.

Skipped when the reference's venv is absent (CI builds it with
``../shared/reference/setup``).
"""

import difflib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from app.db.engine import make_engine
from app.db.schema import VERSION_TABLE, sync_database
from tests.databases import TEST_SERVER_URL, scratch_database
from tests.live_server import LiveServer
from tests.reference_server import (
    ReferenceServer,
    reference_available,
    reference_manage,
    write_config,
)

pytestmark = pytest.mark.skipif(
    not reference_available(), reason="needs the reference's venv (../shared/reference/setup)")

HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
ROOT_RP = "9a2b8f4e-0c55-4c63-8a51-2b3c4d5e6f70"
CHILD_RP = "9a2b8f4e-0c55-4c63-8a51-2b3c4d5e6f71"
SHARED_RP = "9a2b8f4e-0c55-4c63-8a51-2b3c4d5e6f72"
AGGREGATE = "5d1f3c2b-7a8e-4f60-9b1c-0d2e3f4a5b6c"
CONSUMERS = ("c0c0c0c0-0000-4000-8000-000000000001", "c0c0c0c0-0000-4000-8000-000000000002",
             "c0c0c0c0-0000-4000-8000-000000000003")


def _ok(response: httpx.Response) -> None:
    assert response.status_code < 300, (response.request.method, response.request.url,
                                        response.status_code, response.text)


def seed(url: str) -> None:
    """A small cloud: a tree, a sharing provider, custom class and trait, claims."""
    with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
        _ok(client.put("/resource_classes/CUSTOM_GPU"))
        _ok(client.put("/traits/CUSTOM_FAST"))
        for uuid, name, parent in ((ROOT_RP, "compute-1", None),
                                   (CHILD_RP, "compute-1-numa0", ROOT_RP),
                                   (SHARED_RP, "shared-disk", None)):
            body: dict[str, Any] = {"uuid": uuid, "name": name}
            if parent:
                body["parent_provider_uuid"] = parent
            _ok(client.post("/resource_providers", json=body))
        _ok(client.put(f"/resource_providers/{CHILD_RP}/inventories", json={
            "resource_provider_generation": 0, "inventories": {
                "VCPU": {"total": 16, "allocation_ratio": 4.0, "max_unit": 8},
                "MEMORY_MB": {"total": 32768, "reserved": 512, "step_size": 256},
                "CUSTOM_GPU": {"total": 2}}}))
        _ok(client.put(f"/resource_providers/{SHARED_RP}/inventories", json={
            "resource_provider_generation": 0, "inventories": {
                "DISK_GB": {"total": 1000, "reserved": 10}}}))
        _ok(client.put(f"/resource_providers/{CHILD_RP}/traits", json={
            "resource_provider_generation": 1, "traits": ["CUSTOM_FAST", "HW_CPU_X86_AVX2"]}))
        _ok(client.put(f"/resource_providers/{SHARED_RP}/traits", json={
            "resource_provider_generation": 1,
            "traits": ["MISC_SHARES_VIA_AGGREGATE"]}))
        for uuid, generation in ((ROOT_RP, 0), (SHARED_RP, 2)):
            _ok(client.put(f"/resource_providers/{uuid}/aggregates", json={
                "resource_provider_generation": generation, "aggregates": [AGGREGATE]}))
        _ok(client.put(f"/allocations/{CONSUMERS[0]}", json={
            "allocations": {CHILD_RP: {"resources": {"VCPU": 4, "MEMORY_MB": 2048}},
                            SHARED_RP: {"resources": {"DISK_GB": 20}}},
            "project_id": "project-a", "user_id": "user-a", "consumer_generation": None,
            "consumer_type": "INSTANCE"}))
        _ok(client.post("/allocations", json={
            CONSUMERS[1]: {"allocations": {CHILD_RP: {"resources": {"CUSTOM_GPU": 1}}},
                           "project_id": "project-b", "user_id": "user-b",
                           "consumer_generation": None, "consumer_type": "MIGRATION"},
            CONSUMERS[2]: {"allocations": {SHARED_RP: {"resources": {"DISK_GB": 5}}},
                           "project_id": "project-a", "user_id": "user-c",
                           "consumer_generation": None, "consumer_type": "INSTANCE"}}))


READS = [
    "/resource_providers",
    "/resource_providers?in_tree=" + ROOT_RP,
    "/resource_providers?member_of=" + AGGREGATE,
    "/resource_providers?required=CUSTOM_FAST",
    "/resource_providers?resources=VCPU:2",
    *(f"/resource_providers/{uuid}{part}"
      for uuid in (ROOT_RP, CHILD_RP, SHARED_RP)
      for part in ("", "/inventories", "/usages", "/traits", "/aggregates", "/allocations")),
    f"/resource_providers/{CHILD_RP}/inventories/VCPU",
    *(f"/allocations/{consumer}" for consumer in CONSUMERS),
    "/usages?project_id=project-a",
    "/usages?project_id=project-a&user_id=user-c",
    "/usages?project_id=project-b&consumer_type=MIGRATION",
    "/traits?name=startswith:CUSTOM_",
    "/traits?associated=true",
    "/resource_classes/CUSTOM_GPU",
    "/resource_classes?",
    "/allocation_candidates?resources=VCPU:1,DISK_GB:10&member_of=" + AGGREGATE,
    "/allocation_candidates?resources=VCPU:1&required=CUSTOM_FAST",
    "/allocation_candidates?resources1=CUSTOM_GPU:1&resources2=DISK_GB:1&group_policy=none",
]


def _normal(value: Any) -> Any:
    """JSON with lists of equal content in one order (the answers' orders are unspecified)."""
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((_normal(item) for item in value), key=json.dumps)
    return value


def read_all(url: str) -> dict[str, tuple[int, Any]]:
    with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
        answers = {}
        for path in READS:
            response = client.get(path)
            answers[path] = (response.status_code, _normal(response.json()))
        return answers


def _assert_same(project: dict[str, tuple[int, Any]],
                 reference: dict[str, tuple[int, Any]]) -> None:
    """Every read answered alike, but where the reference fails on its own: on
    PostgreSQL it answers 500 to ``GET /usages?project_id=`` at 1.38+ (its
    grouping by consumer type is not valid SQL there)."""
    compared = 0
    for path in READS:
        assert project[path][0] == 200, (path, project[path])
        if reference[path][0] == 500 and path.startswith("/usages"):
            continue
        assert project[path] == reference[path], path
        compared += 1
    assert compared >= len(READS) - 3


def _project(database_url: str, log: Path) -> LiveServer:
    return LiveServer(database_url, log, headers=HEADERS, ready_path="/resource_classes/VCPU")


def test_reference_made_database_is_adopted(database_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "reference", database_url)
    synced = reference_manage(config, "db", "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with ReferenceServer(config, tmp_path / "reference.log") as reference:
        seed(reference.url)
        by_reference = read_all(reference.url)
    with _project(database_url, tmp_path / "project.log") as project:
        by_project = read_all(project.url)
    _assert_same(by_project, by_reference)


def test_project_made_database_is_accepted_by_the_reference(
    database_url: str, tmp_path: Path
) -> None:
    with _project(database_url, tmp_path / "project.log") as project:
        seed(project.url)
        by_project = read_all(project.url)
    config = write_config(tmp_path / "reference", database_url)
    synced = reference_manage(config, "db", "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with ReferenceServer(config, tmp_path / "reference.log") as reference:
        by_reference = read_all(reference.url)
        # And the reference writes to it.
        with httpx.Client(base_url=reference.url, headers=HEADERS) as client:
            _ok(client.delete(f"/allocations/{CONSUMERS[2]}"))
    _assert_same(by_project, by_reference)
    with _project(database_url, tmp_path / "project-again.log") as project:
        with httpx.Client(base_url=project.url, headers=HEADERS) as client:
            assert client.get(f"/allocations/{CONSUMERS[2]}").json()["allocations"] == {}
            assert client.get(f"/allocations/{CONSUMERS[0]}").json() == \
                by_project[f"/allocations/{CONSUMERS[0]}"][1]


# ------------------------------------------------------------------ the schema


def _dump(url: str, exclude: str | None = None) -> str:
    """The schema as the database's own dump tool writes it (SQLite: as inspected)."""
    parsed = make_url(url)
    host, port, name = parsed.host or "127.0.0.1", str(parsed.port or ""), str(parsed.database)
    if parsed.get_backend_name() == "mysql":
        command = ["mysqldump", "--no-defaults", "-h", host, "-P", port or "3306",
                   "-u", parsed.username or "root", "--no-data", "--skip-comments", name]
        if exclude:
            command.append(f"--ignore-table={name}.{exclude}")
        dump = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return re.sub(r" AUTO_INCREMENT=\d+", "", dump)
    if parsed.get_backend_name() == "postgresql":
        command = ["pg_dump", "-h", host, "-p", port or "5432", "-U", parsed.username or "postgres",
                   "--schema-only", "--no-owner", name]
        if exclude:
            command.append(f"--exclude-table={exclude}")
        dump = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return re.sub(r"^\\(un)?restrict .*$", "", dump, flags=re.MULTILINE)
    return _inspected(url, exclude)


def _inspected(url: str, exclude: str | None) -> str:
    """SQLite: every table's columns, keys and indexes (its stored SQL text keeps
    the formatting of whichever tool created it)."""
    engine = create_engine(make_url(url).set(drivername="sqlite"))
    try:
        inspector = inspect(engine)
        lines = []
        for table in sorted(set(inspector.get_table_names()) - {exclude}):
            lines += [f"{table}.{c['name']} {c['type']} null={c['nullable']} "
                      f"default={str(c['default']).strip(chr(39))}"
                      for c in inspector.get_columns(table)]
            lines.append(f"{table} pk {inspector.get_pk_constraint(table)['constrained_columns']}")
            lines += sorted(f"{table} index {i['name']} {i['column_names']} {i['unique']}"
                            for i in inspector.get_indexes(table))
            lines += sorted(f"{table} unique {u['name']} {u['column_names']}"
                            for u in inspector.get_unique_constraints(table))
            lines += sorted(f"{table} fk {f['constrained_columns']} {f['referred_table']}"
                            f"{f['referred_columns']}" for f in inspector.get_foreign_keys(table))
        return "\n".join(lines)
    finally:
        engine.dispose()


async def test_schema_is_the_references(database_url: str, tmp_path: Path) -> None:
    """mysqldump --no-data / pg_dump --schema-only of a database the reference made
    and of one the project made differ by the project's own version table only."""
    async with scratch_database(TEST_SERVER_URL, tmp_path / "reference-db",
                                "placement_ref") as reference_url:
        (tmp_path / "reference-db").mkdir(exist_ok=True)
        synced = reference_manage(write_config(tmp_path / "reference", reference_url), "db", "sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        engine = make_engine(database_url)
        try:
            await sync_database(engine)
        finally:
            await engine.dispose()
        reference, project = _dump(reference_url), _dump(database_url, exclude=VERSION_TABLE)
        assert VERSION_TABLE not in reference
        assert VERSION_TABLE in _dump(database_url)
        difference = list(difflib.unified_diff(
            reference.splitlines(), project.splitlines(), "reference", "project", lineterm=""))
        assert difference == [], "\n".join(difference)
