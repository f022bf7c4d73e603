"""Swagger UI as a user drives it, offline: pick versions, authorize, try it out.

Every request that does not go to the live server is aborted (and recorded):
the page must work with what the package ships. Each step leaves a
screenshot in the artifacts directory.
"""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.microversion import VERSIONS
from tests.live_server import LiveServer

TIMEOUT_MS = 20_000


class Steps:
    """Screenshots numbered in the order of the steps, and a log of them."""

    def __init__(self, page: Any, artifacts: Path) -> None:
        self.page = page
        self.artifacts = artifacts
        self.count = 0

    def done(self, name: str, result: str) -> None:
        self.count += 1
        path = self.artifacts / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        print(f"browser step {self.count}: {name}: {result} ({path.name})")


def _pick_version(page: Any, label: str) -> None:
    page.select_option(".topbar select", label=label)
    page.wait_for_selector(f".info .title:has-text('microversion {label}')", timeout=TIMEOUT_MS)


def _operation(page: Any, method: str, path: str) -> Any:
    block = page.locator(f".opblock-{method}").filter(
        has=page.locator(f".opblock-summary-path[data-path='{path}']")
    ).first
    if not block.locator(".opblock-body").count():
        block.locator(".opblock-summary").first.click()
    block.locator(".try-out__btn").click()
    return block


def _execute(block: Any) -> str:
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=TIMEOUT_MS)
    return str(status.inner_text()).strip()


def test_swagger_ui_offline_versions_authorize_and_try_it_out(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    local = urlsplit(live_server.url).netloc
    blocked: list[str] = []
    sent_versions: list[tuple[str, str, str | None]] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: sent_versions.append((
        request.method, urlsplit(request.url).path,
        request.headers.get("openstack-api-version"),
    )))
    steps = Steps(page, artifacts)

    # 1. The page and the latest document, from the shipped assets only.
    page.goto(f"{live_server.url}/docs")
    page.wait_for_selector(
        f".info .title:has-text('microversion {VERSIONS[-1]}')", timeout=TIMEOUT_MS
    )
    options = page.locator(".topbar select option").all_inner_texts()
    assert options == list(reversed(VERSIONS))
    steps.done("docs-latest", f"{len(options)} versions in the picker")

    # 2. Versions: /allocation_candidates appears at 1.10, not at 1.9.
    _pick_version(page, "1.9")
    assert page.locator(".opblock-summary-path[data-path='/allocation_candidates']").count() == 0
    steps.done("version-1.9", "no /allocation_candidates")
    _pick_version(page, "1.10")
    page.wait_for_selector(".opblock-summary-path[data-path='/allocation_candidates']")
    steps.done("version-1.10", "/allocation_candidates listed")

    # 3. At 1.19 (POST answers 201 without a body there): authorize.
    _pick_version(page, "1.19")
    page.locator(".auth-wrapper button.authorize").click()
    page.locator(".modal-ux input").first.fill("admin")
    page.locator(".modal-ux button.authorize").click()
    steps.done("authorized", "x-auth-token set")
    page.locator(".modal-ux button.btn-done").click()

    # 4. GET /resource_providers: 200.
    get = _operation(page, "get", "/resource_providers")
    status = _execute(get)
    assert status == "200", status
    steps.done("get-resource-providers", status)

    # 5. POST /resource_providers: 201.
    post = _operation(page, "post", "/resource_providers")
    post.locator("textarea.body-param__text").fill('{"name": "made-in-swagger-ui"}')
    status = _execute(post)
    assert status == "201", status
    post.scroll_into_view_if_needed()
    steps.done("post-resource-providers", status)

    # The requests carried the chosen microversion; the provider exists.
    api = [entry for entry in sent_versions if entry[1] == "/resource_providers"]
    assert api == [
        ("GET", "/resource_providers", "placement 1.19"),
        ("POST", "/resource_providers", "placement 1.19"),
    ]
    listed = page.request.get(
        f"{live_server.url}/resource_providers", headers={"x-auth-token": "admin"}
    ).json()
    assert [rp["name"] for rp in listed["resource_providers"]] == ["made-in-swagger-ui"]

    # 6. ReDoc, offline too.
    page.goto(f"{live_server.url}/openapi/redoc?version=1.19")
    page.wait_for_selector("text=microversion 1.19", timeout=TIMEOUT_MS)
    steps.done("redoc-1.19", "rendered")

    assert blocked == [], blocked
    assert errors == [], errors
    print(f"browser: no request left the machine; screenshots in {artifacts}")
    context.close()
