"""Fail when a file on the must-pass list has a failing conformance test."""

import json
import sys
from pathlib import Path


def main(result_path: str, list_path: str) -> int:
    result = json.loads(Path(result_path).read_text())
    files = result.get("files", {})
    if isinstance(files, list):
        files = {entry.get("file") or entry.get("name"): entry for entry in files}
    must_pass = [
        line.split("#")[0].strip()
        for line in Path(list_path).read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    failed = []
    for name in must_pass:
        entry = files.get(name)
        if entry is None:
            failed.append(f"{name}: not in the run")
            continue
        tests = entry.get("tests", [])
        bad = [t for t in tests if t.get("status") in ("failed", "error")]
        if bad or entry.get("error"):
            failed.append(f"{name}: {len(bad)} failing")
    for line in failed:
        print(f"ratchet: {line}")
    print(f"ratchet: {len(must_pass) - len(failed)} of {len(must_pass)} must-pass files pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
