"""Authentication strategies: turn request headers into a request context.

``noauth2`` (for tests and trusted deployments) derives the identity from the
``X-Auth-Token`` header the way the reference does; ``keystone`` expects a
token-validating proxy in front that injects the identity headers.
"""

from dataclasses import dataclass, field

UNAUTHORIZED_BODY = (
    b'{"message": "This server could not verify that you are authorized to access the '
    b"document you requested. Either you supplied the wrong credentials (e.g., bad "
    b"password), or your browser does not understand how to supply the credentials "
    b'required.<br /><br />\\n\\n\\n", "code": "401 Unauthorized", "title": "Unauthorized"}'
)


class Unauthenticated(Exception):
    """No usable identity: answered 401."""


@dataclass(frozen=True)
class RequestContext:
    user_id: str | None
    project_id: str | None
    roles: list[str] = field(default_factory=list)
    system_scope: str | None = None
    domain_id: str | None = None
    request_id: str = ""

    def credentials(self) -> dict[str, object]:
        """The credentials dict oslo.policy evaluates rules against."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": [role.strip().lower() for role in self.roles if role.strip()],
            "system_scope": self.system_scope,
            "system": self.system_scope,
            "domain_id": self.domain_id,
        }


def _split_roles(value: str | None) -> list[str]:
    if not value:
        return []
    return [role.strip() for role in value.split(",") if role.strip()]


def context_from_identity_headers(headers: dict[str, str], request_id: str) -> RequestContext:
    """Build the context from identity headers (what keystonemiddleware injects)."""
    user_id = headers.get("x-user-id") or headers.get("x-user")
    if user_id is None:
        raise Unauthenticated()
    project_id = (
        headers.get("x-project-id") or headers.get("x-tenant-id") or headers.get("x-tenant")
    )
    roles = _split_roles(headers.get("x-roles") or headers.get("x-role"))
    system_scope = headers.get("openstack-system-scope") or None
    return RequestContext(
        user_id=user_id,
        project_id=None if system_scope else project_id,
        roles=roles,
        system_scope=system_scope,
        domain_id=headers.get("x-domain-id"),
        request_id=request_id,
    )


def noauth2_context(headers: dict[str, str], request_id: str) -> RequestContext:
    """The ``noauth2`` strategy: identity from the token, overridable by headers."""
    token = headers.get("x-auth-token")
    if token is None:
        raise Unauthenticated()
    user_id, _, project_id = token.partition(":")
    if not project_id:
        project_id = user_id
    if "x-roles" in headers:
        roles = _split_roles(headers["x-roles"])
    elif user_id == "admin":
        roles = ["admin"]
    else:
        roles = []
    system_scope = headers.get("openstack-system-scope") or None
    identity = {
        "x-user-id": user_id,
        "x-roles": ",".join(roles),
        "x-project-id": headers.get("x-project-id") or "",
        "x-tenant-id": "" if system_scope else project_id,
        "openstack-system-scope": system_scope or "",
        "x-domain-id": headers.get("x-domain-id") or "",
    }
    context = context_from_identity_headers(
        {key: value for key, value in identity.items() if value or key == "x-user-id"},
        request_id,
    )
    return context
