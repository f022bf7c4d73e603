"""Real server processes for the tests and the benchmarks.

Each server is ``placement-api`` (the console script's function) -- or, for
the claims test and benchmark, bare ``uvicorn app.main:app`` (no multi-process
metrics files whatever the workers) -- in its own process group on a free
loopback port, logging to a file. ``Process`` is the same handling for any
other command (the topology test's load balancers).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path | None) -> str:
    return log.read_text()[-3000:] if log and log.exists() else ""


def wait_until_answers(
    url: str,
    timeout: float = 30.0,
    proc: "subprocess.Popen[bytes] | None" = None,
    log: Path | None = None,
    *,
    answers: int = 1,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Until ``url`` gave ``answers`` non-5xx answers (several: every worker is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url, headers=headers, timeout=2.0).status_code < 500:
                answers -= 1
                if answers <= 0:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{_tail(log)}")


def manage(database_url: str, *args: str, timeout: float = 120.0) -> None:
    """``placement-manage ARGS`` (e.g. ``db sync``) on ``database_url``; must succeed."""
    env = {**os.environ, "PLACEMENT_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-c", "from app.cli import manage; manage()", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class Process:
    """A command in its own process group, output to ``log_path``.

    Its own session, so that signals reach every worker it forks and nothing
    reaches the test runner.
    """

    def __init__(self, command: Sequence[str], log_path: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.base_command = list(command)
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return self.base_command

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.extra_env}

    def spawn(self) -> "subprocess.Popen[bytes]":
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines() if self.log_path.exists() else []


class LiveServer(Process):
    """A server on 127.0.0.1:port; start/stop/kill as a process, or ``with`` it.

    ``launcher``: ``placement-api`` (what deployments run) or ``uvicorn``;
    ``args`` are appended to its command line. Started means ``ready_path``
    answered ``ready_answers`` times (with ``headers``).
    """

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
        launcher: Literal["placement-api", "uvicorn"] = "placement-api",
        ready_path: str = "/",
        ready_answers: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__((), log_path, env)
        self.database_url = database_url
        self.port = port or free_port()
        self.args = args
        self.launcher = launcher
        self.ready_path = ready_path
        self.ready_answers = ready_answers
        self.headers = dict(headers or {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        address = ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.launcher == "uvicorn":
            return [sys.executable, "-m", "uvicorn", "app.main:app", *address, *self.args]
        return [sys.executable, "-c", "from app.cli import serve; serve()", *address, *self.args]

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PLACEMENT_DATABASE_URL": self.database_url,
            "PLACEMENT_AUTH_STRATEGY": "noauth2",
            "PLACEMENT_LOG_FORMAT": "json",
            **self.extra_env,
        }
        # Only a metrics directory asked for here: an inherited one belongs to someone else.
        if "PROMETHEUS_MULTIPROC_DIR" not in self.extra_env:
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return env

    def start(self, timeout: float = 60.0) -> "LiveServer":
        proc = self.spawn()
        try:
            wait_until_answers(self.url + self.ready_path, timeout, proc, self.log_path,
                               answers=self.ready_answers, headers=self.headers)
        except BaseException:
            self.kill()
            raise
        return self

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(20.0)
