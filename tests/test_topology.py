"""The deployment topology from plain processes, and the deployment files.

PostgreSQL, a one-shot ``placement-manage db sync``, two ``placement-api``
replicas (``PLACEMENT_SYNC_ON_STARTUP=false``, mounted under ``/placement``) on
their own loopback ports, and a load balancer from Debian's packages in front,
configured from ``deploy/`` (nginx: ``deploy/nginx/placement.conf``; HAProxy,
health-checking ``GET /`` as kolla does: ``deploy/haproxy/haproxy.cfg``).

Clients claim resources through the balancer while one replica is stopped
(SIGTERM, graceful) and restarted, then the other is killed (SIGKILL) and
restarted. Asserted: no 5xx except in the moments after a replica went away
(while the balancer notices), no other unexpected status, every acknowledged
claim is stored, usage equals exactly the stored claims, and a final burst
over the remaining capacity is not over-committed.

Needs PostgreSQL (``PLACEMENT_TEST_DATABASE_URL``) and the balancer binary;
skipped with the reason otherwise (``.ci/run`` installs nginx and haproxy).
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.live_server import ROOT, LiveServer, Process, free_port, manage, wait_until_answers

PREFIX = "/placement"
HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
CLIENTS = 4
# A 5xx (or a connection error) is tolerated only this long after a replica
# went away: the balancer needs one failed attempt (nginx) or a failed health
# check (HAProxy, 2 x 300 ms in the test) to take it out.
NOTICE_WINDOW = 3.0


def _binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (path for path in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}")
         if os.access(path, os.X_OK)),
        None,
    )


# ---------------------------------------------------------------- balancers

def nginx_config(workdir: Path, port: int, upstreams: list[int]) -> list[str]:
    """Render deploy/nginx/placement.conf for loopback; return the command line."""
    site = (ROOT / "deploy/nginx/placement.conf").read_text()
    site = site.replace("server api1:8778", f"server 127.0.0.1:{upstreams[0]}")
    site = site.replace("server api2:8778", f"server 127.0.0.1:{upstreams[1]}")
    site = site.replace("listen 8778;", f"listen 127.0.0.1:{port};")
    site = site.replace("access_log /dev/stdout", f"access_log {workdir}/access.log")
    assert f"127.0.0.1:{upstreams[1]}" in site
    assert f"127.0.0.1:{port}" in site
    (workdir / "placement.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {workdir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    (workdir / "nginx.conf").write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {workdir}/nginx.pid;\n"
        f"error_log {workdir}/error.log warn;\n"
        "events { worker_connections 512; }\n"
        f"http {{\n{temp}\n    include {workdir}/placement.conf;\n}}\n"
    )
    binary = _binary("nginx")
    assert binary
    return [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
            "-e", str(workdir / "error.log")]


def haproxy_config(workdir: Path, port: int, upstreams: list[int]) -> list[str]:
    """Render deploy/haproxy/haproxy.cfg for loopback; return the command line."""
    cfg = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
    # No container DNS here: addresses instead of service names.
    cfg = re.sub(r"\nresolvers docker\n(    .*\n)+", "\n", cfg)
    cfg = cfg.replace(" resolvers docker init-addr last,libc,none", "")
    cfg = cfg.replace("server api1 api1:8778", f"server api1 127.0.0.1:{upstreams[0]}")
    cfg = cfg.replace("server api2 api2:8778", f"server api2 127.0.0.1:{upstreams[1]}")
    cfg = cfg.replace("bind :8778", f"bind 127.0.0.1:{port}")
    cfg = cfg.replace("inter 2s", "inter 300ms")
    assert "resolvers" not in cfg
    assert f"127.0.0.1:{upstreams[1]}" in cfg
    (workdir / "haproxy.cfg").write_text(cfg)
    binary = _binary("haproxy")
    assert binary
    return [binary, "-db", "-f", str(workdir / "haproxy.cfg")]


BALANCERS = {"nginx": nginx_config, "haproxy": haproxy_config}


# ---------------------------------------------------------------- load

@dataclass
class Outcome:
    started: float
    ended: float
    status: int  # 0: no HTTP answer (connection error)
    consumer: str
    code: str | None = None  # error code, or the client-side exception's name


@dataclass
class Timeline:
    origin: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, what: str) -> None:
        self.events.append((time.monotonic() - self.origin, what))

    def outages(self) -> list[float]:
        return [at for at, what in self.events if what.startswith(("stop", "kill"))]


def claim_body(rp: str, amount: int = 1) -> dict[str, Any]:
    return {
        "allocations": {rp: {"resources": {"VCPU": amount}}},
        "project_id": "topology-project",
        "user_id": "topology-user",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }


async def claim(client: httpx.AsyncClient, rp: str, timeline: Timeline) -> Outcome:
    consumer = str(uuid.uuid4())
    started = time.monotonic() - timeline.origin
    try:
        response = await client.put(f"{PREFIX}/allocations/{consumer}", json=claim_body(rp))
    except httpx.HTTPError as exc:
        return Outcome(started, time.monotonic() - timeline.origin, 0, consumer,
                       type(exc).__name__)
    code = None
    if response.status_code >= 400:
        try:
            code = response.json()["errors"][0].get("code")
        except (ValueError, KeyError, IndexError):
            code = None
    return Outcome(started, time.monotonic() - timeline.origin, response.status_code,
                   consumer, code)


async def drive(client: httpx.AsyncClient, rp: str, timeline: Timeline,
                stop: asyncio.Event) -> list[Outcome]:
    outcomes: list[Outcome] = []
    while not stop.is_set():
        outcomes.append(await claim(client, rp, timeline))
        await asyncio.sleep(0.01)
    return outcomes


def disrupt(replicas: list[LiveServer], timeline: Timeline) -> None:
    """Stop one replica gracefully and restart it; then crash the other and restart it."""
    first, second = replicas
    time.sleep(1.5)
    timeline.mark("stop replica 1 (SIGTERM)")
    first.stop()
    timeline.mark("replica 1 exited")
    time.sleep(1.5)
    first.start()
    timeline.mark("replica 1 up again")
    # Let the balancer take replica 1 back (nginx: fail_timeout) before the crash.
    time.sleep(3.0)
    timeline.mark("kill replica 2 (SIGKILL)")
    second.kill()
    time.sleep(1.5)
    second.start()
    timeline.mark("replica 2 up again")
    time.sleep(1.5)


# ---------------------------------------------------------------- the test

@pytest.mark.parametrize("balancer", sorted(BALANCERS))
async def test_claims_through_balancer_survive_replica_restarts(
    balancer: str, postgresql_url: str, tmp_path: Path
) -> None:
    if _binary(balancer) is None:
        pytest.skip(f"{balancer} is not installed (apt-get install {balancer})")
    # The one-shot migration step, then replicas that do not sync on start.
    manage(postgresql_url, "db", "sync")
    replicas = [
        LiveServer(postgresql_url, tmp_path / f"replica{n}.log",
                   args=("--root-path", PREFIX, "--graceful-timeout", "10"),
                   env={"PLACEMENT_SYNC_ON_STARTUP": "false"})
        for n in (1, 2)
    ]
    lb_port = free_port()
    lb_dir = tmp_path / balancer
    lb_dir.mkdir()
    lb = Process(BALANCERS[balancer](lb_dir, lb_port, [r.port for r in replicas]),
                 lb_dir / "stdout.log")
    try:
        for replica in replicas:
            replica.start()
        base = f"http://127.0.0.1:{lb_port}"
        wait_until_answers(base + PREFIX + "/", 20, lb.spawn(), lb.log_path)
        await run_scenario(base, replicas)
    finally:
        lb.stop(10)
        for replica in replicas:
            replica.kill()
    if balancer == "nginx":
        upstreams = Counter(
            json.loads(line)["upstream"].split(",")[0].strip()
            for line in (lb_dir / "access.log").read_text().splitlines()
        )
        ports = {str(r.port) for r in replicas}
        served = {address.rsplit(":", 1)[-1] for address in upstreams}
        assert ports <= served, upstreams  # both replicas took traffic


async def run_scenario(base: str, replicas: list[LiveServer]) -> None:
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=30) as client:
        root = await client.get(PREFIX)
        assert root.status_code == 200
        assert root.json()["versions"][0]["max_version"] == "1.39"
        # URLs the replicas write carry the balancer's host and the mount prefix.
        resource_class = f"CUSTOM_TOPOLOGY_{uuid.uuid4().hex[:8].upper()}"
        created_rc = await client.put(f"{PREFIX}/resource_classes/{resource_class}")
        assert created_rc.status_code == 201
        assert created_rc.headers["location"] == (
            f"{base}{PREFIX}/resource_classes/{resource_class}")
        # Readiness is visible through the balancer; metrics are not.
        assert (await client.get(f"{PREFIX}/healthcheck")).json()["status"] == "ok"
        assert (await client.get(f"{PREFIX}/metrics")).status_code == 404
        created = await client.post(f"{PREFIX}/resource_providers",
                                    json={"name": f"topology-{uuid.uuid4()}"})
        assert created.status_code == 200, created.text
        provider = created.json()
        rp = provider["uuid"]
        # Links written behind the proxy carry the mount prefix.
        assert all(link["href"].startswith(f"{PREFIX}/resource_providers/{rp}")
                   for link in provider["links"])
        inventory = await client.put(
            f"{PREFIX}/resource_providers/{rp}/inventories",
            json={"resource_provider_generation": provider["generation"],
                  "inventories": {"VCPU": {"total": 100000}}},
        )
        assert inventory.status_code == 200, inventory.text

        # Phase 1: steady claims while the replicas go away and come back.
        timeline = Timeline()
        stop = asyncio.Event()
        workers = [asyncio.create_task(drive(client, rp, timeline, stop))
                   for _ in range(CLIENTS)]
        try:
            await asyncio.to_thread(disrupt, replicas, timeline)
        finally:
            stop.set()
            results = await asyncio.gather(*workers)
        outcomes = [o for batch in results for o in batch]
        failed = [(round(o.started, 2), o.status, o.code)
                  for o in outcomes if o.status == 0 or o.status >= 500]
        print(f"claims through the balancer: {dict(Counter(o.status for o in outcomes))}; "
              f"failures: {failed}; "
              f"events: {[(round(at, 2), what) for at, what in timeline.events]}")
        check_outcomes(outcomes, timeline)

        # Nothing lost, nothing invented: the stored consumers are exactly the
        # acknowledged claims plus, possibly, ambiguous ones (no answer / 5xx /
        # a replayed PUT answered 409) that did land.
        held = await consumers_on(client, rp)
        acknowledged = {o.consumer for o in outcomes if o.status == 204}
        ambiguous = {o.consumer for o in outcomes if o.status != 204}
        assert acknowledged <= held, f"lost claims: {sorted(acknowledged - held)[:5]}"
        assert held <= acknowledged | ambiguous
        usages = await client.get(f"{PREFIX}/resource_providers/{rp}/usages")
        assert usages.json()["usages"]["VCPU"] == len(held)

        # Phase 2: a burst over the remaining capacity is not over-committed.
        generation = (await client.get(f"{PREFIX}/resource_providers/{rp}")).json()[
            "generation"]
        room = 15
        resized = await client.put(
            f"{PREFIX}/resource_providers/{rp}/inventories",
            json={"resource_provider_generation": generation,
                  "inventories": {"VCPU": {"total": len(held) + room}}},
        )
        assert resized.status_code == 200, resized.text
        burst_timeline = Timeline()
        burst = await asyncio.gather(*(claim(client, rp, burst_timeline) for _ in range(40)))
        statuses = Counter(o.status for o in burst)
        assert statuses[204] == room, statuses
        assert statuses[409] == 40 - room, statuses
        usages = await client.get(f"{PREFIX}/resource_providers/{rp}/usages")
        assert usages.json()["usages"]["VCPU"] == len(held) + room


def check_outcomes(outcomes: list[Outcome], timeline: Timeline) -> None:
    statuses = Counter(o.status for o in outcomes)
    assert statuses[204] > 100, (statuses, timeline.events)
    outages = timeline.outages()
    for outcome in outcomes:
        if outcome.status == 204:
            continue
        if outcome.status == 409 and outcome.code == "placement.concurrent_update":
            # A PUT the balancer replayed after the first replica died holding it.
            continue
        failed = outcome.status >= 500 or outcome.status == 0
        assert failed, f"unexpected {outcome.status} ({outcome.code})"
        assert any(at - 0.5 <= outcome.started <= at + NOTICE_WINDOW for at in outages), (
            f"{outcome.status} at {outcome.started:.2f} s, outside the moments after "
            f"{timeline.events}"
        )
    # The balancer hid the rest: only requests in flight on the crashed replica
    # (one per client) and a reused connection to it may fail.
    failures = [o for o in outcomes if o.status == 0 or o.status >= 500]
    assert len(failures) <= 2 * CLIENTS, (statuses, timeline.events)


async def consumers_on(client: httpx.AsyncClient, rp: str) -> set[str]:
    response = await client.get(f"{PREFIX}/resource_providers/{rp}/allocations")
    assert response.status_code == 200
    return set(response.json()["allocations"])


# ---------------------------------------------------------------- deployment files

COMPOSE = ROOT / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_topology() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    migrate = services["migrate"]
    assert migrate["entrypoint"] == ["placement-manage"]
    assert migrate["command"] == ["db", "sync"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"

    replicas = [s for name, s in services.items() if name.startswith("api")]
    assert len(replicas) >= 2
    for replica in replicas:
        assert replica["environment"]["PLACEMENT_SYNC_ON_STARTUP"] == "false"
        assert replica["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")
        assert replica["environment"]["PLACEMENT_DATABASE_URL"].startswith(
            "postgresql+asyncpg://")
        assert "/healthcheck" in " ".join(replica["healthcheck"]["test"])
        assert replica["image"] == migrate["image"]

    haproxy = services["haproxy"]
    cfg = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
    assert "./deploy/haproxy/haproxy.cfg" in haproxy["volumes"][0]
    assert "option httpchk GET /\n" in cfg  # unauthenticated GET /, as kolla
    for name in (n for n in services if n.startswith("api")):
        assert re.search(rf"server {name} {name}:8778", cfg)
    nginx = (ROOT / "deploy/nginx/placement.conf").read_text()
    for name in (n for n in services if n.startswith("api")):
        assert f"server {name}:8778" in nginx


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    final = text.split("\nFROM ")[-1]
    user = re.search(r"^USER (\S+)", final, re.M)
    assert user
    assert user.group(1) not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["placement-api"\]', final, re.M)
    assert "HEALTHCHECK" in final
    assert "STOPSIGNAL SIGTERM" in final
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored
    assert ".git" in ignored


def _compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=30).returncode == 0:
        return [docker, "compose"]
    return None


def test_compose_file_validates() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    result = subprocess.run([*cli, "-f", str(COMPOSE), "--profile", "nginx", "config", "-q"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_balancer_configs_validate(tmp_path: Path) -> None:
    checked = 0
    if _binary("nginx"):
        command = nginx_config(tmp_path, free_port(), [free_port(), free_port()])
        result = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        checked += 1
    if _binary("haproxy"):
        command = haproxy_config(tmp_path, free_port(), [free_port(), free_port()])
        result = subprocess.run([*command, "-c"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        checked += 1
    if not checked:
        pytest.skip("neither nginx nor haproxy is installed")
