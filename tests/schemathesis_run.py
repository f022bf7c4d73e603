"""schemathesis against a live server, on the documents of chosen microversions.

``python -m tests.schemathesis_run --versions 1.39 1.10 --max-examples 25 --out DIR``
starts the service (uvicorn, a fresh SQLite database, ``noauth2``), runs
``st run`` on ``/openapi/<version>.json`` with the admin token and that
microversion, with the checks below, and prints per version: the requests
sent, the schema violations, the undocumented statuses and the 5xx answers
(counted from schemathesis' HAR and NDJSON reports, kept in DIR). Exits 1 if
any of those is not zero or schemathesis failed.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.live_server import LiveServer

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
)
COUNTED = {
    "response_schema_conformance": "schema violations",
    "status_code_conformance": "undocumented statuses",
    "not_a_server_error": "5xx (check)",
    "content_type_conformance": "undocumented content types",
}


def failed_checks(ndjson: Path) -> Counter[str]:
    """How many distinct failures each check reported."""
    found: Counter[str] = Counter()
    for line in ndjson.read_text().splitlines():
        for check in _failures(json.loads(line)):
            found[check] += 1
    return found


def _failures(node: object) -> list[str]:
    """Names of failed checks anywhere in one NDJSON event."""
    names: list[str] = []
    if isinstance(node, dict):
        if node.get("status") in ("FAILURE", "failure") and isinstance(node.get("name"), str):
            names.append(node["name"])
        for value in node.values():
            names += _failures(value)
    elif isinstance(node, list):
        for value in node:
            names += _failures(value)
    return names


def har_statuses(har: Path) -> Counter[int]:
    entries = json.loads(har.read_text())["log"]["entries"]
    return Counter(int(entry["response"]["status"]) for entry in entries)


def run_version(url: str, version: str, max_examples: int, out: Path) -> tuple[int, dict[str, int]]:
    label = version.replace(".", "_")
    har, ndjson = out / f"{label}.har", out / f"{label}.ndjson"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi/{version}.json",
        "--checks", ",".join(CHECKS),
        "--header", "x-auth-token: admin",
        "--header", f"OpenStack-API-Version: placement {version}",
        "--max-examples", str(max_examples),
        "--seed", "1",
        "--report", "har,ndjson",
        "--report-har-path", str(har),
        "--report-ndjson-path", str(ndjson),
        "--no-color",
    ]
    with (out / f"{label}.log").open("w") as log:
        status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    statuses = har_statuses(har)
    checks = failed_checks(ndjson)
    figures = {
        "requests sent": sum(statuses.values()),
        **{title: checks.get(check, 0) for check, title in COUNTED.items()},
        "5xx answers": sum(count for code, count in statuses.items() if code >= 500),
        "schemathesis exit status": status.returncode,
    }
    print(f"schemathesis {version}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    print(f"schemathesis {version}: statuses " + ", ".join(
        f"{code}x{count}" for code, count in sorted(statuses.items())
    ))
    return status.returncode, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", nargs="+", default=["1.39", "1.10"])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path(".ci/artifacts/schemathesis"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bad = False
    with tempfile.TemporaryDirectory(prefix="placement-st-") as tmp:
        database = f"sqlite+aiosqlite:///{tmp}/placement.sqlite"
        with LiveServer(database, args.out / "server.log", launcher="uvicorn") as server:
            for version in args.versions:
                code, figures = run_version(server.url, version, args.max_examples, args.out)
                counted = [value for key, value in figures.items() if key != "requests sent"]
                bad = bad or code != 0 or any(counted)
    print(f"schemathesis reports: {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
