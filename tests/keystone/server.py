"""A real Keystone (PyPI ``keystone``) for the tests: SQLite, fernet tokens.

It lives in its own venv, built by ``.ci/keystone.sh`` (never the project's:
it pins many packages). ``KeystoneServer`` sets it up in a directory
(``keystone-manage db_sync``, fernet and credential keys, ``bootstrap``),
serves ``keystone.wsgi.api`` under gunicorn on a free loopback port, and
creates the users the tests need. ``stop``/``start`` and ``pause``/``resume``
(SIGSTOP: the port accepts connections and never answers) let tests watch
the service lose Keystone.
"""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live_server import Process, free_port, wait_until_answers

KEYSTONE_VENV = Path(
    os.environ.get("PLACEMENT_KEYSTONE_VENV")
    or Path.home() / ".cache" / "placement-keystone" / "venv"
)
ADMIN_PASSWORD = "admin-secret"
PASSWORD = "secret"
DEFAULT_DOMAIN = "default"

_WSGI = """import sys
sys.argv = sys.argv[:1]  # oslo.config parses the command line: keep gunicorn's out
from keystone.wsgi.api import application  # noqa: E402,F401
"""


def keystone_available() -> bool:
    return (KEYSTONE_VENV / "bin" / "keystone-manage").exists() and (
        KEYSTONE_VENV / "bin" / "gunicorn"
    ).exists()


@dataclass(frozen=True)
class User:
    name: str
    password: str
    project: str
    user_id: str
    project_id: str


class KeystoneServer(Process):
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        super().__init__((), directory / "keystone.log")
        self.users: dict[str, User] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    def command(self) -> list[str]:
        return [
            str(KEYSTONE_VENV / "bin" / "gunicorn"), "-b", f"127.0.0.1:{self.port}",
            "-w", "2", "--timeout", "120", "--chdir", str(self.directory),
            "--no-control-socket", "keystone_app:application",
        ]

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("OS_", "PLACEMENT_", "VIRTUAL_ENV"))}
        return {**env, "OS_KEYSTONE_CONFIG_DIR": str(self.directory)}

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [str(KEYSTONE_VENV / "bin" / "keystone-manage"),
             "--config-file", str(self.directory / "keystone.conf"), *args],
            env=self.environment(), check=True, capture_output=True, timeout=180,
        )

    def setup(self) -> None:
        d = self.directory
        (d / "keystone.conf").write_text(
            "[DEFAULT]\n"
            f"log_file = {d / 'keystone-app.log'}\n"
            "[database]\n"
            f"connection = sqlite:///{d / 'keystone.db'}\n"
            "[token]\nprovider = fernet\nexpiration = 3600\n"
            f"[fernet_tokens]\nkey_repository = {d / 'fernet-keys'}\n"
            f"[fernet_receipts]\nkey_repository = {d / 'fernet-receipts'}\n"
            f"[credential]\nkey_repository = {d / 'credential-keys'}\n"
            "[identity]\npassword_hash_rounds = 4\n"
        )
        (d / "keystone_app.py").write_text(_WSGI)
        user = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
        self._manage("db_sync")
        self._manage("fernet_setup", *user)
        self._manage("credential_setup", *user)
        self._manage(
            "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
            "--bootstrap-admin-url", self.url, "--bootstrap-public-url", self.url,
            "--bootstrap-internal-url", self.url, "--bootstrap-region-id", "RegionOne",
        )

    def start(self, timeout: float = 60.0) -> "KeystoneServer":
        proc = self.spawn()
        wait_until_answers(self.url, timeout, proc, self.log_path)
        return self

    def pause(self) -> None:
        """Keystone hangs: connections are accepted, nothing is answered."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    # ------------------------------------------------------------ the API
    def token(self, name: str, password: str, project: str | None,
              *, system: bool = False) -> str:
        scope: dict[str, object]
        if system:
            scope = {"system": {"all": True}}
        else:
            scope = {"project": {"name": project, "domain": {"id": DEFAULT_DOMAIN}}}
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": name, "domain": {"id": DEFAULT_DOMAIN}, "password": password}}},
            "scope": scope,
        }}
        response = httpx.post(f"{self.url}/auth/tokens", json=body, timeout=30)
        response.raise_for_status()
        return response.headers["x-subject-token"]

    def admin_token(self) -> str:
        return self.token("admin", ADMIN_PASSWORD, "admin")

    def user_token(self, name: str) -> str:
        user = self.users[name]
        return self.token(user.name, user.password, user.project)

    def revoke(self, token: str) -> None:
        response = httpx.delete(
            f"{self.url}/auth/tokens",
            headers={"x-auth-token": self.admin_token(), "x-subject-token": token},
            timeout=30,
        )
        assert response.status_code == 204, response.text

    def _api(self, token: str, method: str, path: str, body: object = None) -> object:
        response = httpx.request(method, f"{self.url}{path}", json=body,
                                 headers={"x-auth-token": token}, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def _id(self, token: str, collection: str, name: str) -> str:
        found = self._api(token, "GET", f"/{collection}?name={name}")
        assert isinstance(found, dict)
        return str(found[collection][0]["id"])

    def create_user(self, name: str, project: str, role: str) -> User:
        admin = self.admin_token()
        projects = self._api(admin, "GET", f"/projects?name={project}")
        assert isinstance(projects, dict)
        if projects["projects"]:
            project_id = str(projects["projects"][0]["id"])
        else:
            created = self._api(admin, "POST", "/projects", {"project": {
                "name": project, "domain_id": DEFAULT_DOMAIN}})
            assert isinstance(created, dict)
            project_id = str(created["project"]["id"])
        made = self._api(admin, "POST", "/users", {"user": {
            "name": name, "password": PASSWORD, "domain_id": DEFAULT_DOMAIN}})
        assert isinstance(made, dict)
        user_id = str(made["user"]["id"])
        role_id = self._id(admin, "roles", role)
        self._api(admin, "PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")
        user = User(name, PASSWORD, project, user_id, project_id)
        self.users[name] = user
        return user

    def populate(self) -> None:
        """The service user (role service), a member and a reader."""
        self.create_user("placement", "service", "service")
        self.create_user("alice", "demo", "member")
        self.create_user("rita", "demo", "reader")

    def register_placement(self, url: str) -> None:
        """A ``placement`` service in the catalog (clients find the endpoint there)."""
        admin = self.admin_token()
        made = self._api(admin, "POST", "/services", {"service": {
            "name": "placement", "type": "placement"}})
        assert isinstance(made, dict)
        for interface in ("public", "internal", "admin"):
            self._api(admin, "POST", "/endpoints", {"endpoint": {
                "service_id": made["service"]["id"], "interface": interface,
                "url": url, "region_id": "RegionOne"}})


def main() -> None:  # pragma: no cover - a developer's helper
    """``python -m tests.keystone.server DIR [PLACEMENT_URL]``: a Keystone to try things.

    With PLACEMENT_URL, a placement endpoint in its catalog (for the openstack CLI).
    """
    directory = Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    server = KeystoneServer(directory)
    server.setup()
    server.start()
    server.populate()
    if len(sys.argv) > 2:
        server.register_placement(sys.argv[2])
    print(server.url, flush=True)
    try:
        signal.pause()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
