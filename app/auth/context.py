"""The request context, and the ``noauth2`` strategy that derives it from the token.

``noauth2`` (for tests and trusted deployments) derives the identity from the
``X-Auth-Token`` header the way the reference does. ``keystone`` validates the
token with Keystone (``app.auth.keystone``) and builds the context from
Keystone's answer only.
"""

from dataclasses import dataclass, field

UNAUTHORIZED_BODY = (
    b'{"message": "This server could not verify that you are authorized to access the '
    b"document you requested. Either you supplied the wrong credentials (e.g., bad "
    b"password), or your browser does not understand how to supply the credentials "
    b'required.<br /><br />\\n\\n\\n", "code": "401 Unauthorized", "title": "Unauthorized"}'
)


class Unauthenticated(Exception):
    """No usable identity: answered 401 (with ``headers`` and ``body``)."""

    def __init__(
        self, body: bytes = UNAUTHORIZED_BODY, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__("unauthenticated")
        self.body = body
        self.headers = headers


class IdentityUnavailable(Exception):
    """The identity service cannot be asked: answered 503."""


@dataclass(frozen=True)
class RequestContext:
    user_id: str | None
    project_id: str | None
    roles: list[str] = field(default_factory=list)
    system_scope: str | None = None
    domain_id: str | None = None
    request_id: str = ""
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    is_admin_project: bool = True
    # From a valid X-Service-Token (keystone only): kept apart from the user's.
    service_user_id: str | None = None
    service_project_id: str | None = None
    service_roles: list[str] = field(default_factory=list)

    def credentials(self) -> dict[str, object]:
        """The credentials dict oslo.policy evaluates rules against."""
        return {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "roles": _normal(self.roles),
            "system_scope": self.system_scope,
            "system": self.system_scope,
            "domain_id": self.domain_id,
            "is_admin_project": self.is_admin_project,
            "service_user_id": self.service_user_id,
            "service_project_id": self.service_project_id,
            "service_roles": _normal(self.service_roles),
        }


def _normal(roles: list[str]) -> list[str]:
    return [role.strip().lower() for role in roles if role.strip()]


def _split_roles(value: str | None) -> list[str]:
    if not value:
        return []
    return [role.strip() for role in value.split(",") if role.strip()]


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
    if not system_scope:
        project_id = headers.get("x-project-id") or project_id
    return RequestContext(
        user_id=user_id,
        project_id=None if system_scope else project_id,
        roles=roles,
        system_scope=system_scope,
        domain_id=headers.get("x-domain-id") or None,
        request_id=request_id,
    )
