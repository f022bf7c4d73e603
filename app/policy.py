"""Authorization with oslo.policy, using the reference's rule names and defaults.

Operators' policy files load unchanged; ``enforce_new_defaults`` and scope
checks behave as in the reference because the same library evaluates them.
"""

from collections.abc import Iterable
from pathlib import Path

from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_policy import policy

from app.auth import RequestContext
from app.errors import Forbidden


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
_ADMIN_OR_SERVICE_RULES: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("placement:resource_providers:list", "List resource providers.",
     [("GET", "/resource_providers")]),
    ("placement:resource_providers:create", "Create resource provider.",
     [("POST", "/resource_providers")]),
    ("placement:resource_providers:show", "Show resource provider.",
     [("GET", "/resource_providers/{uuid}")]),
    ("placement:resource_providers:update", "Update resource provider.",
     [("PUT", "/resource_providers/{uuid}")]),
    ("placement:resource_providers:delete", "Delete resource provider.",
     [("DELETE", "/resource_providers/{uuid}")]),
    ("placement:resource_classes:list", "List resource classes.",
     [("GET", "/resource_classes")]),
    ("placement:resource_classes:create", "Create resource class.",
     [("POST", "/resource_classes")]),
    ("placement:resource_classes:show", "Show resource class.",
     [("GET", "/resource_classes/{name}")]),
    ("placement:resource_classes:update", "Update resource class.",
     [("PUT", "/resource_classes/{name}")]),
    ("placement:resource_classes:delete", "Delete resource class.",
     [("DELETE", "/resource_classes/{name}")]),
    ("placement:resource_providers:inventories:list", "List resource provider inventories.",
     [("GET", "/resource_providers/{uuid}/inventories")]),
    ("placement:resource_providers:inventories:create", "Create one resource provider inventory.",
     [("POST", "/resource_providers/{uuid}/inventories")]),
    ("placement:resource_providers:inventories:show", "Show resource provider inventory.",
     [("GET", "/resource_providers/{uuid}/inventories/{resource_class}")]),
    ("placement:resource_providers:inventories:update", "Update resource provider inventory.",
     [("PUT", "/resource_providers/{uuid}/inventories"),
      ("PUT", "/resource_providers/{uuid}/inventories/{resource_class}")]),
    ("placement:resource_providers:inventories:delete", "Delete resource provider inventory.",
     [("DELETE", "/resource_providers/{uuid}/inventories"),
      ("DELETE", "/resource_providers/{uuid}/inventories/{resource_class}")]),
    ("placement:resource_providers:aggregates:list", "List resource provider aggregates.",
     [("GET", "/resource_providers/{uuid}/aggregates")]),
    ("placement:resource_providers:aggregates:update", "Update resource provider aggregates.",
     [("PUT", "/resource_providers/{uuid}/aggregates")]),
    ("placement:resource_providers:usages", "List resource provider usages.",
     [("GET", "/resource_providers/{uuid}/usages")]),
    ("placement:traits:list", "List traits.", [("GET", "/traits")]),
    ("placement:traits:show", "Show trait.", [("GET", "/traits/{name}")]),
    ("placement:traits:update", "Update trait.", [("PUT", "/traits/{name}")]),
    ("placement:traits:delete", "Delete trait.", [("DELETE", "/traits/{name}")]),
    ("placement:resource_providers:traits:list", "List resource provider traits.",
     [("GET", "/resource_providers/{uuid}/traits")]),
    ("placement:resource_providers:traits:update", "Update resource provider traits.",
     [("PUT", "/resource_providers/{uuid}/traits")]),
    ("placement:resource_providers:traits:delete", "Delete resource provider traits.",
     [("DELETE", "/resource_providers/{uuid}/traits")]),
    ("placement:allocations:manage", "Manage allocations.", [("POST", "/allocations")]),
    ("placement:allocations:list", "List allocations.", [("GET", "/allocations/{consumer_uuid}")]),
    ("placement:allocations:update", "Update allocations.",
     [("PUT", "/allocations/{consumer_uuid}")]),
    ("placement:allocations:delete", "Delete allocations.",
     [("DELETE", "/allocations/{consumer_uuid}")]),
    ("placement:resource_providers:allocations:list", "List resource provider allocations.",
     [("GET", "/resource_providers/{uuid}/allocations")]),
    ("placement:allocation_candidates:list", "List allocation candidates.",
     [("GET", "/allocation_candidates")]),
]


def default_rules() -> list[policy.RuleDefault]:
    """Every rule the service enforces, with the reference's defaults."""
    rules = _base_rules()
    for name, description, operations in _ADMIN_OR_SERVICE_RULES:
        rules.append(
            policy.DocumentedRuleDefault(
                name=name,
                check_str="rule:admin_or_service_api",
                description=description,
                operations=[{"method": method, "path": path} for method, path in operations],
                scope_types=["project"],
            )
        )
    rules.append(
        policy.DocumentedRuleDefault(
            name="placement:usages",
            check_str="rule:admin_or_project_reader_or_service_api",
            description="List total resource usages for a given project.",
            operations=[{"method": "GET", "path": "/usages"}],
            scope_types=["project"],
        )
    )
    rules.append(
        policy.DocumentedRuleDefault(
            name="placement:reshaper:reshape",
            check_str="rule:service_api",
            description="Reshape Inventory and Allocations.",
            operations=[{"method": "POST", "path": "/reshaper"}],
            scope_types=["project"],
        )
    )
    return rules


def list_rules() -> Iterable[policy.RuleDefault]:
    """Entry point for ``oslopolicy-sample-generator --namespace placement-api``."""
    return default_rules()


class PolicyError(Exception):
    """A policy file that cannot be loaded: reported at start-up."""


class Authorizer:
    """Wraps an oslo.policy Enforcer configured from the service settings."""

    def __init__(self, policy_file: str | None, enforce_new_defaults: bool) -> None:
        if policy_file and not Path(policy_file).is_file():
            raise PolicyError(f"policy file {policy_file} does not exist")
        conf = cfg.ConfigOpts()
        conf([], project="placement", default_config_files=[], default_config_dirs=[])
        # Without a configured file use the defaults only, never a stray policy.yaml.
        policy_opts.set_defaults(
            conf,
            policy_file=policy_file or "placement-api-no-policy-file",
            enforce_scope=True,
            enforce_new_defaults=enforce_new_defaults,
        )
        self._enforcer = policy.Enforcer(conf, use_conf=True)
        # The legacy alternatives are deliberate here; don't warn on every start.
        self._enforcer.suppress_deprecation_warnings = True
        self._enforcer.suppress_default_change_warnings = True
        self._enforcer.register_defaults(default_rules())
        try:
            self._enforcer.load_rules(force_reload=True)
        except Exception as exc:  # oslo.policy raises several unrelated types
            raise PolicyError(f"cannot load policy file {policy_file}: {exc}") from exc

    def authorize(
        self, context: RequestContext, rule: str, target: dict[str, object] | None = None
    ) -> None:
        if target is None:
            target = {"project_id": context.project_id, "user_id": context.user_id}
        try:
            self._enforcer.authorize(rule, target, context.credentials(), do_raise=True)
        except policy.InvalidScope:
            raise Forbidden(rule) from None
        except policy.PolicyNotAuthorized:
            raise Forbidden(f"Policy does not allow {rule} to be performed.") from None
