"""Fail when a file on the must-pass list has a failing conformance test.

    python tests/conformance/ratchet.py RESULT.json tests/conformance/must-pass.txt

RESULT.json is the conformance runner's ``--json`` output:
``{"files": [{"file": "x.yaml", "tests": [{"name", "status", "reason"}], "error": ...}]}``
with ``status`` one of passed, failed, skipped, xfail, excluded. A listed file
fails the ratchet when it is missing from the run, when the runner reports an
error for it (server did not start, fixture failed, time limit), when one of
its tests failed, or when it has no passing test at all.
"""

import json
import sys
from pathlib import Path
from typing import Any

SHOW_TESTS = 5


def read_list(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name and name not in names:
            names.append(name)
    return names


def index_files(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    files = result.get("files", [])
    if isinstance(files, dict):
        return {str(name): entry for name, entry in files.items()}
    return {str(entry.get("file") or entry.get("name")): entry for entry in files}


def problems(name: str, entry: dict[str, Any] | None) -> list[str]:
    if entry is None:
        return [f"{name}: not in the run"]
    tests = entry.get("tests") or []
    failed = [t for t in tests if t.get("status") in ("failed", "error")]
    passed = [t for t in tests if t.get("status") == "passed"]
    found = []
    if entry.get("error"):
        found.append(f"{name}: {str(entry['error']).splitlines()[0][:200]}")
    if failed:
        found.append(f"{name}: {len(failed)} of {len(tests)} tests failing")
        for test in failed[:SHOW_TESTS]:
            reason = str(test.get("reason") or "").splitlines()
            found.append(f"    - {test.get('name')}: {reason[0][:160] if reason else ''}")
        if len(failed) > SHOW_TESTS:
            found.append(f"    - ... {len(failed) - SHOW_TESTS} more")
    if not passed and not found:
        found.append(f"{name}: no test passed")
    return found


def main(result_path: str, list_path: str) -> int:
    result = json.loads(Path(result_path).read_text())
    files = index_files(result)
    must_pass = read_list(Path(list_path))
    failing = 0
    for name in must_pass:
        lines = problems(name, files.get(name))
        if lines:
            failing += 1
            for line in lines:
                print(f"ratchet: {line}")
    print(f"ratchet: {len(must_pass) - failing} of {len(must_pass)} must-pass files pass")
    # Files that pass fully but are not listed yet: candidates for the list.
    candidates = sorted(
        name for name, entry in files.items()
        if name not in must_pass and not problems(name, entry)
    )
    if candidates:
        print(f"ratchet: passing fully but not listed: {', '.join(candidates)}")
    return 1 if failing else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
