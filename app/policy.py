"""Authorization with oslo.policy, using the reference's rule names and defaults.

Operators' policy files load unchanged; ``enforce_new_defaults`` and scope
checks behave as in the reference because the same library evaluates them.
"""

import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_policy import policy

from app.api.routing import RouteTable
from app.auth import RequestContext
from app.exceptions import Forbidden
from app.routers import ALL_ROUTERS


def _base_rules() -> list[policy.RuleDefault]:
    def deprecated(name: str) -> policy.DeprecatedRule:
        return policy.DeprecatedRule(
            name=name,
            check_str="role:admin",
            deprecated_reason="Placement now supports system-scope and default roles.",
            deprecated_since="6.0.0",
        )

    return [
        policy.RuleDefault("admin_api", "role:admin", "Default rule for most placement APIs."),
        policy.RuleDefault(
            "service_api",
            "role:service",
            "Default rule for service-to-service placement APIs.",
            deprecated_rule=deprecated("service_api"),
        ),
        policy.RuleDefault(
            "admin_or_service_api",
            "role:admin or role:service",
            "Default rule for most placement APIs.",
            deprecated_rule=deprecated("admin_or_service_api"),
        ),
        policy.RuleDefault(
            "project_reader_api",
            "role:reader and project_id:%(project_id)s",
            "Default rule for project level reader APIs.",
            deprecated_rule=deprecated("project_reader_api"),
        ),
        policy.RuleDefault(
            "admin_or_project_reader_or_service_api",
            "role:admin or rule:project_reader_api or role:service",
            "Default rule for project level reader APIs.",
            deprecated_rule=deprecated("admin_or_project_reader_or_service_api"),
        ),
    ]


# (rule name, description, [(method, path)]) for every rule defaulting to A/S.
# (rule name, description) of every rule defaulting to admin-or-service. The
# operations each rule guards come from the route declarations.
_ADMIN_OR_SERVICE_RULES: list[tuple[str, str]] = [
    ("placement:resource_providers:list", "List resource providers."),
    ("placement:resource_providers:create", "Create resource provider."),
    ("placement:resource_providers:show", "Show resource provider."),
    ("placement:resource_providers:update", "Update resource provider."),
    ("placement:resource_providers:delete", "Delete resource provider."),
    ("placement:resource_classes:list", "List resource classes."),
    ("placement:resource_classes:create", "Create resource class."),
    ("placement:resource_classes:show", "Show resource class."),
    ("placement:resource_classes:update", "Update resource class."),
    ("placement:resource_classes:delete", "Delete resource class."),
    ("placement:resource_providers:inventories:list", "List resource provider inventories."),
    ("placement:resource_providers:inventories:create", "Create one resource provider inventory."),
    ("placement:resource_providers:inventories:show", "Show resource provider inventory."),
    ("placement:resource_providers:inventories:update", "Update resource provider inventory."),
    ("placement:resource_providers:inventories:delete", "Delete resource provider inventory."),
    ("placement:resource_providers:aggregates:list", "List resource provider aggregates."),
    ("placement:resource_providers:aggregates:update", "Update resource provider aggregates."),
    ("placement:resource_providers:usages", "List resource provider usages."),
    ("placement:traits:list", "List traits."),
    ("placement:traits:show", "Show trait."),
    ("placement:traits:update", "Update trait."),
    ("placement:traits:delete", "Delete trait."),
    ("placement:resource_providers:traits:list", "List resource provider traits."),
    ("placement:resource_providers:traits:update", "Update resource provider traits."),
    ("placement:resource_providers:traits:delete", "Delete resource provider traits."),
    ("placement:allocations:manage", "Manage allocations."),
    ("placement:allocations:list", "List allocations."),
    ("placement:allocations:update", "Update allocations."),
    ("placement:allocations:delete", "Delete allocations."),
    ("placement:resource_providers:allocations:list", "List resource provider allocations."),
    ("placement:allocation_candidates:list", "List allocation candidates."),
]

Operations = dict[str, list[tuple[str, str]]]


def _operations(operations: Operations, name: str) -> list[policy.Operation]:
    return [
        policy.Operation(method=method, path=path) for method, path in operations.get(name, [])
    ]


def default_rules(operations: Operations) -> list[policy.RuleDefault]:
    """Every rule the service enforces, with the reference's defaults."""
    rules = _base_rules()
    for name, description in _ADMIN_OR_SERVICE_RULES:
        rules.append(
            policy.DocumentedRuleDefault(
                name=name,
                check_str="rule:admin_or_service_api",
                description=description,
                operations=_operations(operations, name),
                scope_types=["project"],
            )
        )
    rules.append(
        policy.DocumentedRuleDefault(
            name="placement:usages",
            check_str="rule:admin_or_project_reader_or_service_api",
            description="List total resource usages for a given project.",
            operations=_operations(operations, "placement:usages"),
            scope_types=["project"],
        )
    )
    rules.append(
        policy.DocumentedRuleDefault(
            name="placement:reshaper:reshape",
            check_str="rule:service_api",
            description="Reshape Inventory and Allocations.",
            operations=_operations(operations, "placement:reshaper:reshape"),
            scope_types=["project"],
        )
    )
    return rules


def list_rules() -> Iterable[policy.RuleDefault]:
    """Entry point for ``oslopolicy-sample-generator --namespace placement-api``."""
    routes = RouteTable(route for router in ALL_ROUTERS for route in router.routes)
    return default_rules(routes.operations_by_policy())


class PolicyError(Exception):
    """A policy file that cannot be loaded: reported at start-up."""


# How often the policy file (and policy dirs) are looked at for changes: an
# operator's edit takes effect within this many seconds. oslo.policy itself
# stats them on every check (about a dozen stat() calls a request).
RELOAD_INTERVAL = 1.0
# Decisions kept per worker; a deployment has few distinct callers.
MAX_DECISIONS = 4096
ALLOWED = ""  # the decision kept for an allowed request (a refusal keeps its message)


def _frozen(value: object) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


def _remote(rules: Iterable[object]) -> bool:
    """Whether a rule asks a remote server (``http:``), whose answer may change."""
    return any("http:" in text or "https:" in text for text in map(str, rules))


class Authorizer:
    """Wraps an oslo.policy Enforcer configured from the service settings.

    A rule's outcome depends only on the rules, the target and the
    credentials, so the outcome is kept per (rule, target, credentials) until
    the policy is next looked at (every ``RELOAD_INTERVAL`` seconds), unless a
    rule asks a remote server.
    """

    def __init__(
        self,
        policy_file: str | None,
        enforce_new_defaults: bool,
        *,
        operations: Operations,
        enforce_scope: bool = True,
        reload_interval: float = RELOAD_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy_file and not Path(policy_file).is_file():
            raise PolicyError(f"policy file {policy_file} does not exist")
        conf = cfg.ConfigOpts()
        conf([], project="placement", default_config_files=[], default_config_dirs=[])
        # Without a configured file use the defaults only, never a stray policy.yaml.
        policy_opts.set_defaults(
            conf,
            policy_file=policy_file or "placement-api-no-policy-file",
            enforce_scope=enforce_scope,
            enforce_new_defaults=enforce_new_defaults,
        )
        self._enforcer = policy.Enforcer(conf, use_conf=True)
        # The legacy alternatives are deliberate here; don't warn on every start.
        self._enforcer.suppress_deprecation_warnings = True
        self._enforcer.suppress_default_change_warnings = True
        self._enforcer.register_defaults(default_rules(operations))
        try:
            self._enforcer.load_rules(force_reload=True)
        except Exception as exc:  # oslo.policy raises several unrelated types
            raise PolicyError(f"cannot load policy file {policy_file}: {exc}") from exc
        self._interval = reload_interval
        self._clock = clock
        self._looked_at = clock()
        self._decisions: dict[Hashable, str] = {}
        self._cacheable = not _remote(self._enforcer.rules.values())

    def _refresh(self) -> None:
        """Drop the decisions and let oslo.policy reload a changed file."""
        self._looked_at = self._clock()
        self._decisions.clear()
        # A file that became malformed raises here, as it would in enforce().
        self._enforcer.load_rules()
        self._cacheable = not _remote(self._enforcer.rules.values())

    def authorize(
        self, context: RequestContext, rule: str, target: dict[str, object] | None = None
    ) -> None:
        if target is None:
            target = {"project_id": context.project_id, "user_id": context.user_id}
        if self._clock() - self._looked_at >= self._interval:
            self._refresh()
        credentials = context.credentials()
        key: Hashable = None
        if self._cacheable:
            key = (
                rule,
                tuple((name, _frozen(value)) for name, value in target.items()),
                tuple((name, _frozen(value)) for name, value in credentials.items()),
            )
            found = self._decisions.get(key)
            if found is not None:
                if found:
                    raise Forbidden(found)
                return
        message = self._decide(rule, target, credentials)
        if key is not None:
            if len(self._decisions) >= MAX_DECISIONS:
                self._decisions.clear()
            self._decisions[key] = message
        if message:
            raise Forbidden(message)

    def _decide(self, rule: str, target: dict[str, object], credentials: dict[str, object]) -> str:
        try:
            self._enforcer.authorize(rule, target, credentials, do_raise=True)
        except policy.InvalidScope:
            return rule
        except policy.PolicyNotAuthorized:
            return f"Policy does not allow {rule} to be performed."
        return ALLOWED
