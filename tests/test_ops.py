"""Operations: /healthcheck, /metrics, the JSON access log, path prefix, proxies,
graceful shutdown, multiprocess metrics."""

import json
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.exceptions import CONCURRENT_UPDATE, Conflict
from app.logging_config import JsonFormatter, TextFormatter, logging_config
from app.main import create_app
from app.settings import Settings
from tests.api_helpers import app_client, asgi_client
from tests.live_server import LiveServer

ADMIN = {"x-auth-token": "admin", "openstack-api-version": "placement latest"}


@pytest.fixture
async def anon(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no token and no microversion header."""
    async with app_client(settings) as client:
        yield client


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), sample.value))
    return found


def value(text: str, name: str, **labels: str) -> float:
    return sum(v for got, v in samples(text, name)
               if all(got.get(k) == want for k, want in labels.items()))


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


# ---------------------------------------------------------------- healthcheck

async def test_healthcheck_ok_without_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/healthcheck")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:////nonexistent-placement-dir/sub/db.sqlite",
        # Nothing listens on the discard port: connection refused at once.
        "postgresql+asyncpg://postgres@127.0.0.1:9/placement",
    ],
)
# aiosqlite's worker thread of a connection that failed to open may report to the
# test's event loop after it closed: a warning from the driver, not from the app.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_healthcheck_503_when_database_unreachable(url: str) -> None:
    async with app_client(Settings(database_url=url, sync_on_startup=False)) as client:
        response = await client.get("/healthcheck")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "fail"
        # Nothing of the driver's message (paths, hosts, SQL) leaks out.
        assert "nonexistent" not in response.text
        assert "127.0.0.1" not in response.text
        # Liveness is independent of the database.
        assert (await client.get("/")).status_code == 200


# ---------------------------------------------------------------- metrics

async def test_metrics_count_by_route_status_and_microversion(anon: httpx.AsyncClient) -> None:
    before = await scrape(anon)
    labels = {"route": "/resource_classes/{name}", "method": "GET"}
    for _ in range(3):
        response = await anon.get("/resource_classes/CUSTOM_NOPE", headers=ADMIN)
        assert response.status_code == 404
    response = await anon.get(
        "/resource_classes/VCPU",
        headers={"x-auth-token": "admin", "openstack-api-version": "placement 1.2"},
    )
    assert response.status_code == 200
    assert (await anon.get("/resource_classes/VCPU")).status_code == 401
    after = await scrape(anon)

    def delta(**extra: str) -> float:
        name = "placement_http_requests_total"
        return value(after, name, **labels, **extra) - value(before, name, **labels, **extra)

    assert delta(status="404", microversion="1.39") == 3
    assert delta(status="200", microversion="1.2") == 1
    # A request refused before microversion parsing still has its route template.
    assert delta(status="401", microversion="none") == 1
    count = "placement_http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 5
    inf_bucket = value(after, "placement_http_request_duration_seconds_bucket", le="+Inf",
                       **labels)
    assert inf_bucket >= 5


async def test_metrics_unknown_paths_share_one_label(anon: httpx.AsyncClient) -> None:
    await anon.get(f"/no/such/{uuid.uuid4()}", headers=ADMIN)
    text = await scrape(anon)
    routes = {labels["route"] for labels, _ in samples(text, "placement_http_requests_total")}
    assert "<unmatched>" in routes
    assert not any(route.startswith("/no/such") for route in routes)


async def test_generation_conflicts_counted(settings: Settings) -> None:
    app = create_app(settings)

    async def conflict() -> None:
        raise Conflict("Resource provider's generation already changed.",
                       code=CONCURRENT_UPDATE)

    async def other_conflict() -> None:
        raise Conflict("Duplicate")

    app.add_api_route("/test-conflict", conflict, methods=["PUT"])
    app.add_api_route("/test-other-conflict", other_conflict, methods=["PUT"])
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        before = await scrape(client)
        for path in ("/test-conflict", "/test-conflict", "/test-other-conflict"):
            response = await client.put(path, headers=ADMIN)
            assert response.status_code == 409
        after = await scrape(client)
    name = "placement_generation_conflicts_total"
    assert value(after, name, route="/test-conflict") - value(
        before, name, route="/test-conflict") == 2
    assert value(after, name, route="/test-other-conflict") == value(
        before, name, route="/test-other-conflict")


async def test_stale_provider_generation_is_a_counted_conflict(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/resource_providers", json={"name": "conflict-rp"})
    if created.status_code in (404, 405):
        pytest.skip("resource provider endpoints not implemented yet")
    assert created.status_code == 200, created.text
    rp = created.json()
    inventories = f"/resource_providers/{rp['uuid']}/inventories"
    body = {"resource_provider_generation": rp["generation"] + 7,
            "inventories": {"VCPU": {"total": 4}}}
    before = await scrape(client)
    response = await client.put(inventories, json=body)
    if response.status_code in (404, 405):
        pytest.skip("inventory endpoints not implemented yet")
    assert response.status_code == 409, response.text
    assert response.json()["errors"][0]["code"] == CONCURRENT_UPDATE
    after = await scrape(client)
    name = "placement_generation_conflicts_total"
    labels = {"route": "/resource_providers/{uuid}/inventories", "method": "PUT"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


async def test_serialization_retries_exported(anon: httpx.AsyncClient) -> None:
    name = "placement_db_serialization_retries_total"
    before = value(await scrape(anon), name)
    # The counters live on the app's Database; the metrics export their growth.
    app = anon._transport.app  # type: ignore[attr-defined]
    app.state.database.stats.serialization_retries += 3
    assert value(await scrape(anon), name) - before == 3


async def test_in_progress_gauge_back_to_zero(anon: httpx.AsyncClient) -> None:
    await anon.get("/")
    # The scrape itself is the one request in progress.
    assert value(await scrape(anon), "placement_http_requests_in_progress") == 1


# ---------------------------------------------------------------- logs

async def test_access_log_record(
    anon: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    response = await anon.get(
        "/resource_classes/VCPU",
        headers={"x-auth-token": "alice:tenant-a", "x-roles": "admin",
                 "openstack-api-version": "placement 1.7"},
    )
    assert response.status_code == 200
    records = [r for r in caplog.records if r.name == "app.access"]
    assert len(records) == 1
    record = records[0]
    fields = vars(record)
    assert fields["request_id"] == response.headers["x-openstack-request-id"]
    assert fields["user_id"] == "alice"
    assert fields["project_id"] == "tenant-a"
    assert fields["microversion"] == "1.7"
    assert fields["status"] == 200
    assert fields["method"] == "GET"
    assert fields["route"] == "/resource_classes/{name}"
    assert isinstance(fields["duration_ms"], float)
    assert fields["duration_ms"] >= 0

    line = json.loads(JsonFormatter().format(record))
    for key in ("ts", "level", "logger", "message", "request_id", "user_id", "project_id",
                "microversion", "status", "duration_ms", "route"):
        assert key in line, key
    assert line["level"] == "INFO"
    assert line["logger"] == "app.access"
    assert "request_id=req-" in TextFormatter().format(record)


def test_json_formatter_exceptions_and_config() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), exc_info=sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here"
    assert "ValueError: boom" in line["exc_info"]
    config = logging_config("json", "warning")
    assert config["root"]["level"] == "WARNING"
    assert config["formatters"]["default"]["()"].endswith("JsonFormatter")
    assert logging_config("text")["formatters"]["default"]["()"].endswith("TextFormatter")


# ---------------------------------------------------------------- prefix and proxies

async def test_links_and_location_carry_the_mount_prefix(settings: Settings) -> None:
    async with app_client(settings, ADMIN, root_path="/placement") as client:
        for path in ("/placement", "/placement/"):
            root = await client.get(path)
            assert root.status_code == 200, path
            assert root.json()["versions"][0]["id"] == "v1.0"
        listing = await client.get("/placement/resource_classes")
        assert listing.status_code == 200
        hrefs = [link["href"] for rc in listing.json()["resource_classes"]
                 for link in rc["links"]]
        assert hrefs
        assert all(h.startswith("/placement/resource_classes/") for h in hrefs)
        created = await client.put("/placement/resource_classes/CUSTOM_PREFIXED")
        assert created.status_code == 201
        assert created.headers["location"] == (
            "http://placement.test/placement/resource_classes/CUSTOM_PREFIXED"
        )
        provider = await client.post("/placement/resource_providers", json={"name": "p"})
        if provider.status_code == 200:
            links = provider.json()["links"]
            assert all(link["href"].startswith("/placement/resource_providers/")
                       for link in links)


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'live.sqlite'}"


def test_served_under_prefix_behind_a_proxy(sqlite_file: str, tmp_path: Path) -> None:
    server = LiveServer(sqlite_file, tmp_path / "server.log",
                        args=("--root-path", "/placement")).start()
    try:
        # A proxy that strips the prefix, and one that passes it on: same answers.
        for path in ("/resource_classes/VCPU", "/placement/resource_classes/VCPU"):
            response = httpx.get(server.url + path, headers=ADMIN)
            assert response.status_code == 200, path
            assert response.json()["links"][0]["href"] == "/placement/resource_classes/VCPU"
        assert httpx.get(server.url + "/placement").json()["versions"][0]["id"] == "v1.0"
        # X-Forwarded-Proto and the Host the proxy passes on make the Location URL.
        response = httpx.put(
            server.url + "/resource_classes/CUSTOM_BEHIND_PROXY",
            headers={**ADMIN, "x-forwarded-proto": "https", "host": "cloud.example.com",
                     "x-forwarded-for": "203.0.113.7"},
        )
        assert response.status_code == 201
        assert response.headers["location"] == (
            "https://cloud.example.com/placement/resource_classes/CUSTOM_BEHIND_PROXY"
        )
        assert "server" not in response.headers
    finally:
        server.stop()
    access = [json.loads(line) for line in server.log_lines()
              if line.startswith("{") and '"app.access"' in line]
    put = [entry for entry in access if entry["method"] == "PUT"]
    assert put
    assert put[0]["remote_addr"] == "203.0.113.7"
    assert put[0]["route"] == "/resource_classes/{name}"
    assert put[0]["status"] == 201
    assert put[0]["user_id"] == "admin"


# ---------------------------------------------------------------- processes

def _read_response(sock: socket.socket) -> bytes:
    sock.settimeout(20)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_graceful_shutdown_finishes_requests_in_flight(sqlite_file: str, tmp_path: Path) -> None:
    server = LiveServer(sqlite_file, tmp_path / "server.log").start()
    body = json.dumps({"name": "CUSTOM_IN_FLIGHT"}).encode()
    head = (
        "POST /resource_classes HTTP/1.1\r\nHost: localhost\r\nx-auth-token: admin\r\n"
        "openstack-api-version: placement 1.2\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(head + body[:5])  # the handler is now waiting for the rest
        time.sleep(0.5)
        server.signal(signal.SIGTERM)
        time.sleep(1.0)
        # No new connections are accepted while the old request finishes...
        # Refused or timed out, whichever the kernel does with the closed listener.
        with pytest.raises(OSError):  # noqa: PT011
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        assert server.proc is not None
        assert server.proc.poll() is None
        # ...and the request in flight completes normally.
        sock.sendall(body[5:])
        response = _read_response(sock)
        sock.close()
        assert response.startswith(b"HTTP/1.1 201"), response[:200]
        assert server.proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        server.kill()


def test_metrics_add_up_across_worker_processes(sqlite_file: str, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    server = LiveServer(
        sqlite_file, tmp_path / "server.log", args=("--workers", "2"),
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    ).start()
    try:
        for _ in range(20):  # a new connection each: the kernel spreads them
            assert httpx.get(server.url + "/resource_classes/VCPU",
                             headers=ADMIN).status_code == 200
        for _ in range(4):  # whichever worker answers the scrape sees all 20
            text = httpx.get(server.url + "/metrics").text
            assert value(text, "placement_http_requests_total",
                         route="/resource_classes/{name}", status="200") == 20
        assert len(list(metrics_dir.glob("counter_*.db"))) >= 1
    finally:
        server.stop()


# ---------------------------------------------------------------- CI ratchet

def test_conformance_ratchet(tmp_path: Path) -> None:
    from tests.conformance.ratchet import main as ratchet

    result = tmp_path / "result.json"
    listed = tmp_path / "must-pass.txt"
    listed.write_text("# never remove a line\na.yaml  # why\nb.yaml\n")

    def run(files: list[dict[str, object]]) -> int:
        result.write_text(json.dumps({"files": files}))
        return ratchet(str(result), str(listed))

    ok = {"tests": [{"name": "t", "status": "passed"}, {"name": "s", "status": "skipped"}],
          "error": None}
    assert run([{"file": "a.yaml", **ok}, {"file": "b.yaml", **ok}]) == 0
    assert run([{"file": "a.yaml", **ok}]) == 1  # b.yaml missing from the run
    failing = {"tests": [{"name": "t", "status": "failed", "reason": "x"}], "error": None}
    assert run([{"file": "a.yaml", **ok}, {"file": "b.yaml", **failing}]) == 1
    broken = {"tests": [], "error": "server failed to start"}
    assert run([{"file": "a.yaml", **ok}, {"file": "b.yaml", **broken}]) == 1


# ---------------------------------------------------------------- placement-api options

def test_placement_api_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import app.cli as cli

    calls: list[dict[str, object]] = []
    monkeypatch.setattr("app.cli.uvicorn.run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("PLACEMENT_ROOT_PATH", "/placement/")
    monkeypatch.setenv("PLACEMENT_WORKERS", "1")
    cli.serve(["--port", "9999"])
    single = calls.pop()
    assert single["app"] == "app.main:app"
    assert single["port"] == 9999
    assert single["root_path"] == "/placement"
    assert single["workers"] == 1
    assert single["proxy_headers"] is True
    assert single["timeout_graceful_shutdown"] == 30
    assert single["timeout_keep_alive"] == 75  # above load balancers' idle timeouts
    assert single["access_log"] is False
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    cli.serve(["--workers", "3", "--graceful-timeout", "5", "--log-format", "text",
               "--keep-alive-timeout", "20"])
    multi = calls.pop()
    assert multi["timeout_keep_alive"] == 20
    assert multi["workers"] == 3
    assert multi["timeout_graceful_shutdown"] == 5
    assert not list(metrics_dir.glob("*.db"))  # stale files of a previous run removed
    log_config = multi["log_config"]
    assert isinstance(log_config, dict)
    assert log_config["formatters"]["default"]["()"].endswith("TextFormatter")
