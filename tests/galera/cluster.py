"""A 3-node MariaDB Galera cluster on loopback, for the Galera tests.

Debian's ``galera-4`` with the installed MariaDB: each node its own data
directory, socket, client port and Galera group, IST and SST ports, its own
``--defaults-file`` (first on the command line, so nothing reads the machine's
own server configuration) and runs as user ``mysql`` when started by root (rsync
state transfer refuses root). Node 0 bootstraps the cluster, the others join
one at a time (rsync state transfer). ``wsrep_sync_wait=1``: a read waits until
its node has applied every write the cluster committed before it, so a client
reading through one replica sees what it wrote through another.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.live_server import free_port

MARIADBD = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")
CLIENT = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
NODES = 3


def galera_available() -> str | None:
    """Why the cluster cannot run here (None: it can)."""
    for path in (MARIADBD, INSTALL_DB, PROVIDER):
        if not path.exists():
            return f"{path} is missing (.ci/galera.sh installs galera-4 and MariaDB)"
    if shutil.which("rsync") is None:
        return "rsync is missing (.ci/galera.sh installs it)"
    return None


@dataclass
class Node:
    index: int
    directory: Path
    port: int = field(default_factory=free_port)
    group_port: int = field(default_factory=free_port)
    ist_port: int = field(default_factory=free_port)
    sst_port: int = field(default_factory=free_port)
    proc: "subprocess.Popen[bytes] | None" = None

    @property
    def config(self) -> Path:
        return self.directory / "my.cnf"

    def url(self, database: str, driver: str = "asyncmy") -> str:
        return f"mysql+{driver}://root@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, timeout: float = 10.0) -> str:
        """One statement through the command-line client (no defaults read)."""
        result = subprocess.run(
            [CLIENT, "--no-defaults", "-h", "127.0.0.1", "-P", str(self.port), "-u", "root",
             "-N", "-B", "-e", statement],
            capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode:
            raise RuntimeError(result.stderr.strip())
        return result.stdout.strip()

    def state(self) -> str:
        try:
            return self.sql("SHOW STATUS LIKE 'wsrep_local_state_comment'", 3).split("\t")[-1]
        except (RuntimeError, subprocess.TimeoutExpired):
            return "down"


class GaleraCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="placement-galera-"))
        self.root.chmod(0o755)
        self.as_root = os.getuid() == 0
        self.nodes = [Node(index, self.root / f"node{index}") for index in range(NODES)]

    def _own(self, path: Path) -> None:
        if self.as_root:
            shutil.chown(path, "mysql", "mysql")

    def _write_config(self, node: Node) -> None:
        members = ",".join(f"127.0.0.1:{other.group_port}" for other in self.nodes)
        user = "user = mysql\n" if self.as_root else ""
        node.config.write_text(f"""[mariadbd]
{user}datadir = {node.directory}/data
socket = {node.directory}/sock
pid-file = {node.directory}/pid
log-error = {node.directory}/error.log
port = {node.port}
bind-address = 127.0.0.1
skip-grant-tables
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
max-connections = 300
innodb-buffer-pool-size = 64M
innodb-flush-log-at-trx-commit = 2
innodb-autoinc-lock-mode = 2
binlog-format = ROW
default-storage-engine = InnoDB
wsrep-on = ON
wsrep-provider = {PROVIDER}
wsrep-cluster-name = placement-test
wsrep-cluster-address = gcomm://{members}
wsrep-node-name = node{node.index}
wsrep-node-address = 127.0.0.1:{node.group_port}
wsrep-provider-options = "gmcast.listen_addr=tcp://127.0.0.1:{node.group_port};ist.recv_addr=127.0.0.1:{node.ist_port};gcache.size=64M"
wsrep-sst-method = rsync
wsrep-sst-receive-address = 127.0.0.1:{node.sst_port}
wsrep-sync-wait = 1
""")

    def start(self) -> "GaleraCluster":
        for node in self.nodes:
            node.directory.mkdir()
            self._own(node.directory)
            self._write_config(node)
            subprocess.run(
                [str(INSTALL_DB), f"--defaults-file={node.config}", "--skip-test-db",
                 "--auth-root-authentication-method=normal"],
                capture_output=True, check=True, timeout=120)
        self.start_node(0, bootstrap=True)
        for index in range(1, NODES):
            self.start_node(index)
        return self

    def start_node(self, index: int, *, bootstrap: bool = False, timeout: float = 120.0) -> None:
        node = self.nodes[index]
        command = [str(MARIADBD), f"--defaults-file={node.config}"]
        if bootstrap:
            command.append("--wsrep-new-cluster")
        node.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while node.state() != "Synced":
            if node.proc.poll() is not None or time.monotonic() > deadline:
                log = (node.directory / "error.log")
                raise RuntimeError(f"galera node {index} did not sync:\n"
                                   + (log.read_text()[-3000:] if log.exists() else ""))
            time.sleep(0.3)

    def stop_node(self, index: int, timeout: float = 60.0) -> None:
        """A clean shutdown (the node leaves the cluster; the others stay primary)."""
        node = self.nodes[index]
        if node.proc is None or node.proc.poll() is not None:
            return
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait(10)

    def stop(self) -> None:
        for index in reversed(range(NODES)):
            self.stop_node(index)
        shutil.rmtree(self.root, ignore_errors=True)
