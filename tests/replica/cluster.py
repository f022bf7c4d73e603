"""A PostgreSQL primary and a hot standby on loopback, for the read-replica tests.

The installed PostgreSQL's own tools (``/usr/lib/postgresql/*/bin``), run as
the ``postgres`` OS user when started by root (they refuse root): ``initdb``
(trust authentication, which also lets replication connections in from
loopback), ``pg_basebackup -R`` (the standby's ``standby.signal`` and
``primary_conninfo``), streaming replication. Everything lives in one
temporary directory, removed by :meth:`StandbyPair.stop`.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Ports are looked for from here up (PLACEMENT_TEST_REPLICA_PORT overrides).
PORT_BASE = int(os.environ.get("PLACEMENT_TEST_REPLICA_PORT", "19510"))


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (None: not installed)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int, start: int = PORT_BASE) -> list[int]:
    ports: list[int] = []
    port = start
    while len(ports) < count:
        if _port_free(port):
            ports.append(port)
        port += 1
    return ports


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Server:
    name: str
    data: Path
    port: int
    bin: Path

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """One statement through psql; its unaligned, tuples-only output."""
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", statement],
            capture_output=True, text=True, timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: {statement}: {result.stderr.strip()}")
        return result.stdout.strip()

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]),
            check=True, capture_output=True, timeout=120,
        )

    def start(self) -> None:
        self.pg_ctl("-l", str(self.data.parent / f"{self.name}.log"), "-w", "-t", "60",
                    "-o", f"-p {self.port}", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg_ctl("-m", "immediate", "-w", "stop")


@dataclass
class StandbyPair:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="placement-replica-")))
    servers: list[Server] = field(default_factory=list)

    @property
    def primary(self) -> Server:
        return self.servers[0]

    @property
    def standby(self) -> Server:
        return self.servers[1]

    def start(self) -> "StandbyPair":
        pg_bin = postgres_bin()
        assert pg_bin is not None, "PostgreSQL is not installed"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        primary_port, standby_port = free_ports(2)
        primary = Server("primary", self.root / "primary", primary_port, pg_bin)
        standby = Server("standby", self.root / "standby", standby_port, pg_bin)
        self.servers = [primary, standby]
        try:
            subprocess.run(
                _as_postgres([str(pg_bin / "initdb"), "-D", str(primary.data), "-U", "postgres",
                              "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]),
                check=True, capture_output=True, timeout=120,
            )
            with open(primary.data / "postgresql.conf", "a") as conf:
                conf.write(
                    "listen_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.root}'\n"
                    "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                    "fsync = off\nshared_buffers = 32MB\n"
                    # A query on the standby that blocks replay waits for it at
                    # most this long (then the standby cancels the query).
                    "max_standby_streaming_delay = 5s\n"
                )
            primary.start()
            subprocess.run(
                _as_postgres([str(pg_bin / "pg_basebackup"), "-h", "127.0.0.1",
                              "-p", str(primary_port), "-U", "postgres", "-D", str(standby.data),
                              "-R", "-X", "stream", "--no-sync"]),
                check=True, capture_output=True, timeout=120,
            )
            standby.start()
            self.wait_streaming()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_streaming(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.primary.sql("SELECT count(*) FROM pg_stat_replication"
                               " WHERE state = 'streaming'") != "1":
            if time.monotonic() > deadline:
                raise TimeoutError("the standby does not stream from the primary")
            time.sleep(0.1)

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        lsn = self.primary.sql("SELECT pg_current_wal_insert_lsn()")
        deadline = time.monotonic() + timeout
        while self.standby.sql(
                f"SELECT pg_wal_lsn_diff('{lsn}', pg_last_wal_replay_lsn()) <= 0") != "t":
            if time.monotonic() > deadline:
                raise TimeoutError("the standby does not replay")
            time.sleep(0.05)

    def pause_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_resume()")

    def stop(self) -> None:
        for server in reversed(self.servers):
            try:
                server.stop()
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
