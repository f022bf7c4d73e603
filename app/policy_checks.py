"""oslo.policy's extension checks, imported when a rule first uses one.

oslo.policy finds its extension checks (``http:``, ``https:``: rules that ask
a remote server) through stevedore, which imports every plugin the first time
any rule is parsed. The http checks bring ``requests`` with them: about 5 MB in
every worker for rules placement's defaults never use. :func:`defer` fills
oslo.policy's registry with the same names, each importing its plugin when a
rule of that kind is first parsed, so an operator's policy file that uses one
still works exactly as before.
"""

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from oslo_policy import _checks

GROUP = "oslo.policy.rule_checks"


def _on_first_use(entry_point: EntryPoint) -> Callable[..., Any]:
    def make_check(kind: str, match: str) -> Any:
        return entry_point.load()(kind, match)

    return make_check


def defer() -> None:
    """Register the installed extension checks without importing them (once)."""
    if _checks.extension_checks is None:
        _checks.extension_checks = {
            entry_point.name: _on_first_use(entry_point)
            for entry_point in entry_points(group=GROUP)
        }
