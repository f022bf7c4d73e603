"""Start-up as an operator sees it: short errors, loopback by default, db sync's report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.databases import TEST_SERVER_URL, is_postgresql, sibling_url
from tests.live_server import ROOT, Process, free_port, wait_until_answers

SECRET = "s3cret-pw"


def _environment(**variables: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("PLACEMENT_") and name != "OS_PLACEMENT_CONFIG_DIR"}
    env["OS_PLACEMENT_CONFIG_DIR"] = "/nonexistent"  # no stray placement.conf
    return {**env, **variables}


def run(command: str, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"from app.cli import {command}; {command}()", *args],
        cwd=ROOT, env=_environment(**variables), capture_output=True, text=True,
        timeout=60, check=False,
    )


def _missing_database_url(tmp_path: Path) -> str:
    if is_postgresql(TEST_SERVER_URL):
        server = TEST_SERVER_URL.replace("postgres@", f"postgres:{SECRET}@")
        return sibling_url(server, "placement_missing_i10")
    return f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/placement.sqlite"


CASES = {
    "bad URL": ({"PLACEMENT_DATABASE_URL": f"oracle://u:{SECRET}@h/db"}, "bad database URL"),
    "unparseable URL": ({"PLACEMENT_DATABASE_URL": "not a url"}, "cannot parse database URL"),
    "port that is no number": (
        {"PLACEMENT_DATABASE_URL": f"postgresql://u:{SECRET}@db:port/placement"},
        "cannot parse database URL '<unparseable URL>': invalid literal"),
    "unreachable database": (
        {"PLACEMENT_DATABASE_URL": f"postgresql+psycopg2://u:{SECRET}@127.0.0.1:1/placement"},
        "cannot reach the database at postgresql+psycopg2://u:***@127.0.0.1:1/placement"),
    "bad setting": ({"PLACEMENT_MAX_ALLOCATION_CANDIDATES": "lots"},
                    "bad setting max_allocation_candidates = 'lots'"),
    "bad strategy": ({"PLACEMENT_AUTH_STRATEGY": "none"}, "bad setting auth_strategy"),
    "keystone without credentials": ({"PLACEMENT_AUTH_STRATEGY": "keystone"},
                                     "[keystone_authtoken] lacks auth_url"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_configuration_is_two_lines_and_exit_1(case: str, tmp_path: Path) -> None:
    variables, problem = CASES[case]
    variables = {"PLACEMENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/p.sqlite",
                 **variables}
    result = run("serve", "--port", str(free_port()), **variables)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert problem in lines[0], result.stderr
    assert lines[1].startswith("hint: ")
    assert SECRET not in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_database_names_it_and_hints_at_db_sync(tmp_path: Path) -> None:
    result = run("serve", PLACEMENT_DATABASE_URL=_missing_database_url(tmp_path))
    assert result.returncode == 1
    first, hint = result.stderr.strip().splitlines()
    assert "does not exist" in first
    assert "placement-manage db sync" in hint
    assert SECRET not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("serve", "--debug", PLACEMENT_MAX_ALLOCATION_CANDIDATES="lots")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-2].startswith("placement-api: bad setting")


def test_noauth2_refuses_a_public_address_unless_allowed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/p.sqlite"
    result = run("serve", "--host", "0.0.0.0", PLACEMENT_DATABASE_URL=url)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "placement-api: refusing to listen on 0.0.0.0 with auth_strategy noauth2")
    assert "allow_remote_noauth2" in result.stderr


def test_no_configuration_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    server = Process(
        [sys.executable, "-c", "from app.cli import serve; serve()", "--port", str(port)],
        tmp_path / "server.log",
    )
    server.environment = lambda: _environment(  # type: ignore[method-assign]
        PLACEMENT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/p.sqlite")
    proc = server.spawn()
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/", 60, proc, server.log_path)
        log = server.log_path.read_text()
        assert f"http://127.0.0.1:{port}" in log, log
        assert "0.0.0.0" not in log
    finally:
        server.stop()


def test_db_sync_says_which_database_and_what_it_did(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.sqlite"  # the reference's form
    first = run("manage", "db", "sync", PLACEMENT_DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        f"database sqlite:///{tmp_path}/p.sqlite: the schema is now at revision")
    again = run("manage", "db", "sync", PLACEMENT_DATABASE_URL=url)
    assert "the schema was already at revision" in again.stdout, again.stdout


def test_manage_config_show_masks_the_password(tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text(f"[placement_database]\nconnection = postgresql://u:{SECRET}@db/p\n"
                    f"[keystone_authtoken]\npassword = {SECRET}\n")
    result = run("manage", "--config-file", str(conf), "config", "show")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout
    assert "database_url = postgresql://u:***@db/p  # placement.conf" in result.stdout
    assert "auth_strategy = keystone  # placement.conf" in result.stdout


@pytest.mark.parametrize(("trusted", "logged"), [("", "203.0.113.7"), ("10.9.9.9", "127.0.0.1")],
                         ids=["loopback proxy trusted", "other proxies only"])
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path: Path, trusted: str, logged: str
) -> None:
    port = free_port()
    server = Process(
        [sys.executable, "-c", "from app.cli import serve; serve()", "--port", str(port),
         "--log-format", "json"],
        tmp_path / "server.log",
    )
    variables = {"PLACEMENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/p.sqlite"}
    if trusted:
        variables["PLACEMENT_TRUSTED_PROXIES"] = trusted
    server.environment = lambda: _environment(**variables)  # type: ignore[method-assign]
    proc = server.spawn()
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/", 60, proc, server.log_path)
        httpx.get(f"http://127.0.0.1:{port}/resource_providers",
                  headers={"x-auth-token": "admin", "x-forwarded-for": "203.0.113.7"})
    finally:
        server.stop()
    access = [json.loads(line) for line in server.log_lines()
              if '"/resource_providers"' in line and line.startswith("{")]
    assert access, server.log_path.read_text()
    assert access[-1]["remote_addr"] == logged
