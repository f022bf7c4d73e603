"""A throw-away PostgreSQL cluster the fault tests may restart, stop and lock.

Never the machine's shared server: ``initdb`` into a temporary directory, a
free port, run as the ``postgres`` OS user when the tests run as root
(PostgreSQL refuses to run as root). Stopped and removed afterwards.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.live_server import free_port

USER = "placement"
DATABASE = "placement"


def postgresql_bindir() -> str | None:
    """The newest installed server's binaries (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[-3]))
    return str(Path(found[-1]).parent) if found else None


class PrivateCluster:
    def __init__(self) -> None:
        bindir = postgresql_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="placement-faults-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.os_user = "postgres" if os.geteuid() == 0 else None
        if self.os_user:
            owner = pwd.getpwnam(self.os_user)
            os.chown(self.base, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [os.path.join(self.bindir, argv[0]), *argv[1:]]
        if self.os_user:
            command = ["runuser", "-u", self.os_user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, cwd="/tmp",
                              check=check, timeout=120)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "pg.log"),
                  "-w", "-t", "60", *extra, action)

    def start(self) -> "PrivateCluster":
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER,
                      "-E", "UTF8", "--no-sync")
            options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                       "-c max_connections=200 -c synchronous_commit=off -c fsync=off")
            (self.data / "options").write_text(options)
        self._pg_ctl("start", "-o", (self.data / "options").read_text())
        return self

    def create_database(self) -> None:
        self.sql(f"CREATE DATABASE {DATABASE}", database="postgres")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast", "-o", (self.data / "options").read_text())

    def sql(self, statement: str, database: str = DATABASE) -> str:
        result = self._run("psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
                           "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                           "-d", database, "-c", statement)
        return result.stdout.strip()

    def destroy(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)
