"""The OpenAPI documents as a contract: every response the tests receive must fit.

:func:`check_response` finds the operation of a response in the document of
the response's microversion and checks that the status is documented and the
body validates against the documented schema (``jsonschema``, draft 2020-12,
which OpenAPI 3.1 uses). ``asgi_client`` runs it on every response; a
mismatch fails the test that received it.
"""

from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from app.api.openapi import build_document
from app.api.routing import RouteTable
from app.microversion import Version, format_version, parse_version

# Paths that are not API operations (documents, viewers, probes).
NOT_OPERATIONS = ("/openapi", "/docs", "/redoc", "/healthcheck", "/metrics")


# Responses checked in this process, by microversion (the session's summary).
CHECKED: Counter[str] = Counter()


class ContractViolation(AssertionError):
    """A response that its microversion's document does not describe."""


class Contract:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.routes: RouteTable = app.state.route_table
        self.documents: dict[Version, dict[str, Any]] = {}
        self.validators: dict[tuple[Version, str], Draft202012Validator] = {}
        self.checked = 0

    def document(self, version: Version) -> dict[str, Any]:
        if version not in self.documents:
            self.documents[version] = build_document(
                self.app.title, self.app.description, self.routes, version
            )
        return self.documents[version]

    def validator(self, version: Version, ref: str, schema: dict[str, Any]) -> Draft202012Validator:
        key = (version, ref)
        if key not in self.validators:
            root = {**schema, "components": self.document(version)["components"]}
            self.validators[key] = Draft202012Validator(root)
        return self.validators[key]

    def check(self, response: httpx.Response, path: str) -> None:
        """Raise ContractViolation unless the response fits its document."""
        label = self._check(response, path)
        if label is not None:
            self.checked += 1
            CHECKED[label] += 1

    def _check(self, response: httpx.Response, path: str) -> str | None:
        """The microversion whose document the response fits; None: not an operation."""
        header = response.headers.get("openstack-api-version")
        if header is None or path.startswith(NOT_OPERATIONS):
            return None
        version = parse_version(header.split()[-1])
        template = self.routes.template(path)
        if template is None:
            return None
        method = response.request.method.lower()
        operation = self.document(version)["paths"].get(template, {}).get(method)
        if operation is None:
            # Not served at this version: the reference's 404 / 405 (or, on
            # routes that judge the media types first, 406 / 415).
            if response.status_code not in (404, 405, 406, 415):
                raise ContractViolation(
                    f"{method.upper()} {path} at {header}: {response.status_code} from an "
                    "operation the document does not list"
                )
            return None
        where = f"{method.upper()} {path} at {header} ({operation['operationId']})"
        status = str(response.status_code)
        answer = operation["responses"].get(status)
        if answer is None:
            raise ContractViolation(
                f"{where}: status {status} is not documented "
                f"({', '.join(operation['responses'])}); body {response.text[:300]}"
            )
        if "$ref" in answer:
            answer = self.document(version)["components"]["responses"][status]
        media = response.headers.get("content-type", "").split(";")[0].strip()
        content = answer.get("content")
        label = format_version(version)
        if not response.content:
            return label
        if content is None or media not in content:
            raise ContractViolation(
                f"{where}: a {media} body where the document has "
                f"{sorted(content) if content else 'none'} for {status}"
            )
        if media != "application/json":
            return label
        schema = content[media]["schema"]
        ref = schema.get("$ref", f"{template} {method} {status}")
        errors = sorted(
            self.validator(version, ref, schema).iter_errors(response.json()),
            key=lambda error: list(error.absolute_path),
        )
        if errors:
            first = errors[0]
            raise ContractViolation(
                f"{where}: the {status} body does not match {ref}: {first.message} at "
                f"{list(first.absolute_path)}; body {response.text[:300]}"
            )
        return label


def event_hook(app: FastAPI, root_path: str = "") -> Any:
    """An httpx response hook that checks each response against the contract."""
    contract: Contract | None = getattr(app.state, "openapi_contract", None)
    if contract is None:
        contract = Contract(app)
        app.state.openapi_contract = contract

    async def hook(response: httpx.Response) -> None:
        await response.aread()
        path = response.request.url.path
        if root_path and path.startswith(root_path):
            path = path[len(root_path):] or "/"
        assert contract is not None
        contract.check(response, path)

    return hook
