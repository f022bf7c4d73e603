"""schemathesis against a live server, on the documents of chosen microversions.

``python -m tests.schemathesis_run --versions 1.39 1.10 --max-examples 25 --out DIR``
starts the service (uvicorn, a fresh SQLite database, ``noauth2``), runs
``st run`` on ``/openapi/<version>.json`` with the admin token and that
microversion, with the checks below, and prints per version: the requests
sent, the schema violations, the undocumented statuses and the 5xx answers
(counted from schemathesis' HAR and NDJSON reports, kept in DIR), and the
failures the baseline accepts. Exits 1 on any failure the baseline does not
account for.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.live_server import ROOT, LiveServer

# Failures accepted until their fix lands (each entry says why); schemathesis
# still reports them, and the figures below still count their requests.
BASELINE = ROOT / ".ci" / "schemathesis-baseline.json"

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


Failure = tuple[str, str, str]  # operation, check, failure type


def failed_checks(ndjson: Path) -> Counter[Failure]:
    """How many times each check failed, by operation and kind of failure."""
    found: Counter[Failure] = Counter()
    for line in ndjson.read_text().splitlines():
        for failure in _failures(json.loads(line)):
            found[failure] += 1
    return found


def _failures(node: object) -> list[Failure]:
    """The failed checks anywhere in one NDJSON event."""
    failures: list[Failure] = []
    if isinstance(node, dict):
        if node.get("status") in ("FAILURE", "failure") and isinstance(node.get("name"), str):
            info = (node.get("failure_info") or {}).get("failure") or {}
            failures.append((str(info.get("operation", "")), node["name"], str(info.get("type"))))
        for value in node.values():
            failures += _failures(value)
    elif isinstance(node, list):
        for value in node:
            failures += _failures(value)
    return failures


def accepted() -> set[Failure]:
    entries = json.loads(BASELINE.read_text())["entries"]
    return {(entry["operation"], entry["check"], entry["failure"]) for entry in entries}


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
        "--baseline", str(BASELINE),
    ]
    with (out / f"{label}.log").open("w") as log:
        status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    statuses = har_statuses(har)
    failures = failed_checks(ndjson)
    known = accepted()
    new: Counter[str] = Counter()
    for (operation, check, kind), count in failures.items():
        if (operation, check, kind) not in known:
            new[check] += count
    figures = {
        "requests sent": sum(statuses.values()),
        **{title: new.get(check, 0) for check, title in COUNTED.items()},
        "5xx answers": sum(count for code, count in statuses.items() if code >= 500),
        "known failures (baseline)": sum(failures.values()) - sum(new.values()),
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
                new = [figures[title] for title in COUNTED.values()]
                bad = bad or code != 0 or any(new)
    print(f"schemathesis reports: {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
