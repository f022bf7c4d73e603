"""The reference server (OpenStack Placement 16.0) on a database of ours, for the
round-trip tests: its own venv (``../shared/reference/setup`` builds it at
``$PLACEMENT_REFERENCE_VENV``, else ``~/.cache/placement-reference/venv``),
its own ``placement.conf`` naming the database the way operators write it
(``sqlite:///``, ``postgresql+psycopg2://``, ``mysql+pymysql://``).
"""

import os
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.live_server import Process, free_port, wait_until_answers

REFERENCE_VENV = Path(
    os.environ.get("PLACEMENT_REFERENCE_VENV")
    or Path.home() / ".cache" / "placement-reference" / "venv"
)
SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2",
                "mysql": "mysql+pymysql"}


def reference_available() -> bool:
    return (REFERENCE_VENV / "bin" / "placement-manage").exists()


def synchronous_url(url: str) -> str:
    """``url`` as placement.conf names it (the reference's synchronous drivers)."""
    parsed = make_url(url)
    return parsed.set(drivername=SYNC_DRIVERS[parsed.get_backend_name()]).render_as_string(
        hide_password=False)


def write_config(directory: Path, database_url: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "placement.conf").write_text(
        "[api]\nauth_strategy = noauth2\n"
        f"[placement_database]\nconnection = {synchronous_url(database_url)}\n"
        "sync_on_startup = True\n"
    )
    return directory


def reference_manage(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The reference's ``placement-manage ARGS`` (e.g. ``db sync``); not checked."""
    return subprocess.run(
        [str(REFERENCE_VENV / "bin" / "placement-manage"), "--config-dir", str(config_dir),
         *args],
        env={**os.environ, "OS_PLACEMENT_CONFIG_DIR": str(config_dir)},
        capture_output=True, text=True, timeout=180, check=False,
    )


class ReferenceServer(Process):
    """The reference under gunicorn (one worker) on a free loopback port."""

    def __init__(self, config_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        super().__init__(
            [str(REFERENCE_VENV / "bin" / "gunicorn"), "-b", f"127.0.0.1:{self.port}",
             "-w", "1", "--no-control-socket", "placement.wsgi.api:application"],
            log_path, {"OS_PLACEMENT_CONFIG_DIR": str(config_dir)},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ReferenceServer":
        proc = self.spawn()
        try:
            wait_until_answers(self.url + "/", 90.0, proc, self.log_path)
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop(20.0)
