"""Browser fixtures: one live server and one headless Chromium per test module.

Chromium is Debian's (/usr/bin/chromium, or TUNESMITH_CHROMIUM), driven by the `playwright`
Python package; `playwright install` is never needed. Tests are skipped, with the reason,
when either is missing.

Screenshots go to a temporary folder of the test run (TUNESMITH_SCREENSHOT_DIR chooses
another). The README's pictures in docs/screenshots/ change only when asked:
TUNESMITH_REFRESH_SCREENSHOTS=1 (`make screenshots`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ADMIN_TOKEN, ServerProcess

CHROMIUM = os.environ.get("TUNESMITH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REPO = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
REFRESH_DOCS = os.environ.get("TUNESMITH_REFRESH_SCREENSHOTS") == "1"
_screenshot_dir: list[Path] = []
"""Where `screenshot` writes: set once per run by the `screenshot_folder` fixture."""
TOKEN_SCRIPT = f"sessionStorage.setItem('tunesmith.token', {ADMIN_TOKEN!r})"


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install 'tunesmith[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set TUNESMITH_CHROMIUM)"
    return None


@pytest.fixture(scope="session", autouse=True)
def screenshot_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TUNESMITH_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _screenshot_dir[:] = [folder]
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live_server(
    browser: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real `tunesmith serve` shared by the module's tests (each makes its own studies)."""
    workdir = tmp_path_factory.mktemp("browser")
    server = ServerProcess(database_url=f"sqlite:///{workdir / 'tunesmith.db'}", workdir=workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(browser: object, live_server: ServerProcess) -> Iterator[object]:
    """One signed-in tab reused by the module's tests. It bypasses the dashboard's CSP:
    Playwright's `wait_for_function` evaluates strings in the page, which the CSP forbids
    (the dashboard itself runs under it: test_dashboard's CSP test)."""
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=live_server.url,
        viewport={"width": 1400, "height": 900},
        bypass_csp=True,  # wait_for_function evaluates strings; test_dashboard checks the CSP
    )
    context.add_init_script(TOKEN_SCRIPT)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


def screenshot(page: object, name: str, *, docs: bool = False) -> Path:
    """Saves NAME.png in the run's screenshot folder. `docs`: the picture is one of the
    README's, copied to docs/screenshots/ only when TUNESMITH_REFRESH_SCREENSHOTS=1."""
    (folder,) = _screenshot_dir
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    if docs and REFRESH_DOCS:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")
    return path
