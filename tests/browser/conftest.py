"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright for Python.

No browser is downloaded: Playwright launches the system browser. The tests
skip when Chromium or Playwright is absent, unless ``PLACEMENT_BROWSER_REQUIRED``
is set (``.ci/browser.sh`` sets it, after installing both). Screenshots go to
``$ARTIFACTS`` (default ``.ci/artifacts/browser``).
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import ROOT, LiveServer

CHROMIUM = Path(os.environ.get("PLACEMENT_CHROMIUM", "/usr/bin/chromium"))
# The flags design.md measured for this machine and CI.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no Playwright for Python (pip install -e '.[docs-test]')"
    return None


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("ARTIFACTS", ROOT / ".ci" / "artifacts" / "browser")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser() -> Iterator[Any]:
    """Per test: Playwright's sync API holds an event loop while it runs, which
    must be gone before the asyncio tests that follow in the same session."""
    missing = _missing()
    if missing:
        if os.environ.get("PLACEMENT_BROWSER_REQUIRED"):
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    database = f"sqlite+aiosqlite:///{tmp_path}/placement.sqlite"
    with LiveServer(database, tmp_path / "server.log", launcher="uvicorn") as server:
        yield server
