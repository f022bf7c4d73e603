"""Compare the error ``detail`` texts of the reference and the project, answer by answer.

Runs the conformance gabbits (``/work/shared/conformance/gabbits`` or the files
given) through the conformance runner, once against the reference and once
against this checkout, records every 4xx answer (file, test name, status,
``detail`` of each error) and compares the two recordings test by test.
UUIDs and request ids are replaced by placeholders (each run creates its own).

    ~/.cache/placement-reference/venv/bin/python tests/wire_details.py \
        [--checkout .] [--db sqlite] [--out DIR] [GABBIT.yaml ...]

Needs the runner's Python (gabbi); the reference venv has it. Prints the counts
and each difference; exits 1 if any 4xx detail differs.
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(
    os.environ.get("PLACEMENT_CONFORMANCE_DIR", ROOT.parent / "shared" / "conformance")
)
if not CONFORMANCE.exists():
    CONFORMANCE = Path("/work/shared/conformance")

_UUID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
_PORT = re.compile(r"127\.0\.0\.1:\d+")

Record = dict[str, Any]


def _load_runner() -> types.ModuleType:
    path = str(CONFORMANCE / "run")
    loader = importlib.machinery.SourceFileLoader("conformance_run", path)
    spec = importlib.util.spec_from_loader("conformance_run", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _normalise(text: str) -> str:
    return _PORT.sub("HOST", _UUID.sub("UUID", text))


def _details(content: bytes) -> list[str] | str:
    try:
        body = json.loads(content)
    except ValueError:
        return _normalise(content.decode("utf-8", "replace"))
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [_normalise(str(error.get("detail"))) for error in body["errors"]]
    return _normalise(json.dumps(body, sort_keys=True))


def record(server: str, checkout: str, db: str, files: list[str]) -> list[Record]:
    """Run the runner against ``server`` and return its 4xx answers in order."""
    from gabbi import case  # the runner's Python has gabbi

    runner = _load_runner()
    answers: list[Record] = []
    original = case.HTTPTestCase._run_request
    run_file = runner.run_file
    current = {"file": ""}

    def run_one_file(index: int, path: str, opts: Any) -> Any:
        current["file"] = os.path.basename(path)
        return run_file(index, path, opts)

    runner.run_file = run_one_file  # type: ignore[attr-defined]

    def recording(self: Any, url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, url, method, *args, **kwargs)
        finally:
            response = getattr(self, "response", None)
            status = int(response["status"]) if response else 0
            if 400 <= status < 500:
                answers.append({
                    "file": current["file"],
                    "test": self.test_data["name"],
                    "method": method,
                    "status": status,
                    "detail": _details(self.output.encode() if isinstance(self.output, str)
                                       else bytes(self.output or b"")),
                })

    case.HTTPTestCase._run_request = recording
    try:
        argv = ["--server", server, "--db", db, "-j", "1", *files]
        if server == "project":
            argv += ["--checkout", checkout]
        runner.main(argv)
    finally:
        case.HTTPTestCase._run_request = original
    return answers


def compare(reference: list[Record], project: list[Record]) -> list[str]:
    """One line per test whose 4xx answer differs (status or details)."""
    def keyed(records: list[Record]) -> dict[tuple[str, str, int], Record]:
        out: dict[tuple[str, str, int], Record] = {}
        seen: dict[tuple[str, str], int] = {}
        for item in records:
            base = (item["file"], item["test"])
            seen[base] = seen.get(base, 0) + 1
            out[(*base, seen[base])] = item
        return out

    ref, proj = keyed(reference), keyed(project)
    differences = []
    for key in sorted(set(ref) | set(proj)):
        left, right = ref.get(key), proj.get(key)
        if left is None or right is None:
            where = "project only" if left is None else "reference only"
            differences.append(f"{key[0]} / {key[1]}: 4xx from the {where}")
        elif (left["status"], left["detail"]) != (right["status"], right["detail"]):
            differences.append(
                f"{key[0]} / {key[1]}:\n  reference {left['status']} {left['detail']!r}"
                f"\n  project   {right['status']} {right['detail']!r}"
            )
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--checkout", default=str(ROOT))
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres", "mysql"))
    parser.add_argument("--out", default=None, help="keep both recordings (JSON) here")
    parser.add_argument("--reference-json", default=None,
                        help="a reference recording to reuse instead of running it")
    opts = parser.parse_args(argv)
    files = opts.files or [str(CONFORMANCE / "gabbits")]
    if opts.reference_json:
        names = {path.name for given in map(Path, files)
                 for path in ([given] if given.is_file() else given.glob("*.yaml"))}
        reference = [item for item in json.loads(Path(opts.reference_json).read_text())
                     if item["file"] in names]
    else:
        reference = record("reference", opts.checkout, opts.db, files)
    project = record("project", os.path.abspath(opts.checkout), opts.db, files)
    if opts.out:
        out = Path(opts.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "reference.json").write_text(json.dumps(reference, indent=1))
        (out / "project.json").write_text(json.dumps(project, indent=1))
    differences = compare(reference, project)
    for line in differences:
        print(line)
    print(f"wire details: {len(reference)} reference 4xx answers, {len(project)} project "
          f"4xx answers, {len(differences)} differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
