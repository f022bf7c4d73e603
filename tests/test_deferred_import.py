"""Modules deferred at start-up (app/deferred_import.py) stay unrun in a worker
that does not use them, and behave as usual once used."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.deferred_import import defer, is_loaded, keep_out

ROOT = Path(__file__).resolve().parent.parent

WORKER = """
import sys
import app.main
app.main.create_app()
from app.deferred_import import is_loaded
print(sorted(n for n in ("yaml", "netaddr", "rfc3986") if is_loaded(sys.modules[n])))
from oslo_policy import policy
rules = policy.parse_file_contents("'placement:x': 'role:admin'\\n")
assert rules == {"placement:x": "role:admin"}, rules
try:
    policy.parse_file_contents("a: [")
except ValueError:
    pass
else:
    raise AssertionError("bad YAML accepted")
import netaddr, rfc3986
assert str(netaddr.IPAddress("10.0.0.1")) == "10.0.0.1"
assert rfc3986.uri_reference("http://x/").is_valid()
print(sorted(n for n in ("yaml", "netaddr", "rfc3986") if is_loaded(sys.modules[n])))
"""


def test_worker_runs_deferred_modules_only_when_used() -> None:
    done = subprocess.run([sys.executable, "-c", WORKER], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().splitlines()[-2:]
    assert before == "[]"
    assert after == "['netaddr', 'rfc3986', 'yaml']"


def test_failed_first_use_leaves_the_import_to_try_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deferred_probe_module.py").write_text(
        "import os\n"
        "if os.environ.get('DEFERRED_PROBE_FAIL'):\n"
        "    raise RuntimeError('boom')\n"
        "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEFERRED_PROBE_FAIL", "1")
    defer("deferred_probe_module")
    try:
        import deferred_probe_module

        assert not is_loaded(deferred_probe_module)
        with pytest.raises(RuntimeError):
            deferred_probe_module.VALUE  # noqa: B018 (the first use runs the body)
        assert "deferred_probe_module" not in sys.modules
        monkeypatch.delenv("DEFERRED_PROBE_FAIL")
        import deferred_probe_module as again

        assert again.VALUE == 1
    finally:
        sys.modules.pop("deferred_probe_module", None)


def test_a_module_kept_out_fails_to_import_unless_already_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    keep_out("colorsys")
    try:
        with pytest.raises(ImportError):
            import colorsys  # noqa: F401
    finally:
        sys.modules.pop("colorsys", None)
    import json

    keep_out("json")  # already imported: something uses it
    assert sys.modules["json"] is json
