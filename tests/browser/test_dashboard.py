"""The dashboard in a real browser against a real server (and, once, real workers)."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import TOKEN_SCRIPT, screenshot
from tests.support import ADMIN_TOKEN, ServerProcess, WorkerGroup

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GP_SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "width": {"type": "int", "low": 8, "high": 128},
    "activation": {"type": "categorical", "choices": ["relu", "tanh"]},
}


def _loss(p: dict[str, Any]) -> float:
    return (
        (math.log10(p["lr"]) + 2.2) ** 2
        + ((p["width"] - 70) / 60) ** 2
        + (0.3 if p["activation"] == "tanh" else 0.0)
    )


def _png(width: int, height: int) -> bytes:
    """A small gradient PNG, written by hand (no imaging library needed)."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (4 * x, 4 * y, 160)) for y in range(height)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))


@pytest.fixture(scope="module")
def gp_study(live_server: ServerProcess) -> dict[str, Any]:
    """An ask/tell GP study: 26 complete trials (Sobol first, then GP) with 4 intermediate
    values each, and 2 pending."""
    client = live_server.client()
    study = client.create_study(
        {
            "name": "gp-view",
            "objective": "external",
            "metric": "val_loss",
            "space": GP_SPACE,
            "budget": {"max_trials": 60, "max_parallel": 8},
            "strategy": {"name": "gp", "acquisition": "ei"},
            "seed": 7,
        }
    )
    for count in (6, 4, 4, 4, 4, 4):
        for trial in client.suggest(study.id, count):
            loss = _loss(trial.params)
            for step in range(4):
                client.report(trial, step, loss + 0.8 / (step + 1))
            client.complete(trial, loss)
    pending = client.suggest(study.id, 2)
    notes = (
        "**Sobol** first, then the GP with *EI*. Keep `lr` near 6e-3; "
        "`width` past 100 stops helping."
    )
    client.request("PATCH", f"/studies/{study.id}", json={"notes": notes})
    return {"id": study.id, "pending": [t.id for t in pending]}


def test_sign_in_and_studies_page(browser: Any, live_server: ServerProcess) -> None:
    client = live_server.client()
    study = client.create_study(
        {"name": "listed", "objective": "external", "space": GP_SPACE, "budget": {"max_trials": 9}}
    )
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 800})
    page = context.new_page()
    try:
        page.goto("/")
        page.fill("#token", "not-a-token")
        page.click("#signin button[type=submit]")
        page.wait_for_selector("#token-error:has-text('refused')")
        page.fill("#token", ADMIN_TOKEN)
        page.click("#signin button[type=submit]")
        row = page.locator(f"#studies-table tr[data-study='{study.id}']")
        row.wait_for()
        assert "listed" in row.inner_text() and "0 / 9" in row.inner_text()
        row.locator("button[data-action=pause]").click()
        page.wait_for_selector(f"tr[data-study='{study.id}'] .badge:has-text('paused')")
        assert client.get_study(study.id).state == "paused"
        page.locator(f"tr[data-study='{study.id}'] button[data-action=resume]").click()
        page.wait_for_selector(f"tr[data-study='{study.id}'] .badge:has-text('running')")
        screenshot(page, "studies")
    finally:
        context.close()


def test_new_study_form_shows_errors_next_to_fields(page: Any) -> None:
    page.goto("/new")
    page.wait_for_selector("#space")
    assert '"x"' in page.input_value("#space"), "the space is prefilled from the objective"
    page.fill("#name", "from-the-form")
    page.fill("#max_trials", "0")
    page.fill("#space", '{"x": {"type": "float", "low": 2, "high": 1}}')
    page.click("#submit")
    budget_error = page.locator("[data-error-for='budget.max_trials']")
    budget_error.wait_for()
    page.wait_for_function(
        "document.querySelector(\"[data-error-for='budget.max_trials']\").textContent.length > 0"
    )
    assert "greater than or equal to 1" in budget_error.inner_text()
    space_error = page.locator("[data-error-for='space']")
    assert "x: Value error, low (2.0) must be less than high (1.0)" in space_error.inner_text()
    assert page.locator("[data-error-for='name']").inner_text() == ""
    screenshot(page, "new-study-errors")

    page.fill("#max_trials", "5")
    page.fill("#space", "{not json")
    page.click("#submit")
    page.wait_for_function(
        "document.querySelector(\"[data-error-for='space']\").textContent.includes('JSON')"
    )
    assert budget_error.inner_text() == ""

    page.select_option("#objective", "branin")
    page.select_option("#strategy", "random")
    page.click("#submit")
    page.wait_for_url("**/studies/*")
    page.wait_for_selector("h1:has-text('from-the-form')")


def test_trial_completes_live_on_the_study_page(
    page: Any, live_server: ServerProcess, start_workers: Callable[..., WorkerGroup]
) -> None:
    client = live_server.client()
    study = client.create_study(
        {
            "name": "live",
            "objective": "synthetic",
            "objective_args": {"steps": 3, "step_seconds": 0.5},
            "budget": {"max_trials": 2, "max_parallel": 1},
        }
    )
    page.goto(f"/studies/{study.id}")
    page.wait_for_selector("#live.live-live")
    page.evaluate("window.__noReload = true")
    assert page.locator("#trials-table tbody tr").count() == 0
    start_workers(live_server, "--cpu-workers", "1", "--objective", "synthetic")
    page.wait_for_selector("#trials-table tr[data-state='running']", timeout=60_000)
    page.wait_for_selector("#trials-table tr[data-state='complete']", timeout=60_000)
    page.wait_for_function("Number(document.querySelector('#history-plot').dataset.points) >= 1")
    assert page.evaluate("window.__noReload") is True, "the page must not have reloaded"
    assert page.locator("#best-value").inner_text() != "—"

    page.click("a.tab[data-tab=curves]")
    page.wait_for_function("Number(document.querySelector('#curves-plot').dataset.points) >= 3")
    page.goto("/workers")
    page.wait_for_selector("#workers-table tbody tr")
    (ran,) = {t.worker_id for t in live_server.client().trials(study.id) if t.worker_id}
    # Other tests of the module share the server: the page lists their workers too.
    assert page.locator(f"#workers-table tbody tr:has-text('{ran}')").count() == 1
    screenshot(page, "workers")


def test_gp_view_and_parameter_plots_have_data(page: Any, gp_study: dict[str, Any]) -> None:
    page.goto(f"/studies/{gp_study['id']}")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#history-plot").get_attribute("data-points") == "26"
    assert page.locator("#trials-table tr[data-state='running']").count() == 2
    screenshot(page, "study", docs=True)

    page.click("a.tab[data-tab=gp]")
    page.wait_for_function("Number(document.querySelector('#gp-plot').dataset.points) >= 50")
    info = page.locator("#gp-info").inner_text()
    assert "26 observations, 2 pending" in info and "EI" in info
    curve = page.evaluate(
        "document.querySelector('#gp-plot').data.map(t => [t.name, t.y ? t.y.length : 0])"
    )
    names = dict(curve)
    assert names["posterior mean"] >= 50 and names["pending"] == 2 and names["incumbent"] == 1
    assert page.locator("#gp-trials tbody tr").count() > 0
    assert int(page.locator("#gp-predictions").get_attribute("data-points") or 0) > 0
    screenshot(page, "gp-view", docs=True)

    page.select_option("#gp-param2", "width")
    page.wait_for_function(
        "document.querySelector('#gp-plot').data.some(t => t.type === 'contour')"
    )
    screenshot(page, "gp-view-2d")

    page.click("a.tab[data-tab=params]")
    page.wait_for_function("Number(document.querySelector('#parallel-plot').dataset.points) == 26")
    page.wait_for_function("Number(document.querySelector('#importance-plot').dataset.points) == 3")
    screenshot(page, "parameters")


def test_trial_page_shows_an_artifact_image(
    page: Any, live_server: ServerProcess, gp_study: dict[str, Any], tmp_path: Path
) -> None:
    client = live_server.client()
    trial = client.trials(gp_study["id"], state="complete")[0]
    image = tmp_path / "samples.png"
    image.write_bytes(_png(48, 32))
    client.upload_artifact(trial.id, "samples.png", image, "image/png")
    page.goto(f"/trials/{trial.id}")
    img = page.locator("#artifacts img")
    img.wait_for()
    page.wait_for_function(
        "document.querySelector('#artifacts img').complete && "
        "document.querySelector('#artifacts img').naturalWidth === 48"
    )
    assert page.locator("#trial-value").inner_text() != "—"
    assert page.locator("#attempts-table tbody tr").count() == 1
    page.wait_for_selector("#trial-curve[data-points='4']")
    steps = page.locator("#trial-curve .xtick text").all_text_contents()
    assert steps == ["0", "1", "2", "3"], "integer step ticks"
    screenshot(page, "trial", docs=True)


def test_workers_page_shows_devices_and_why_a_worker_leases_nothing(
    page: Any, live_server: ServerProcess
) -> None:
    client = live_server.client()
    h100 = {"gpu": "0", "backend": "jax", "device": "NVIDIA H100 80GB HBM3"}
    client.lease("box-gpu0-1", {**h100, "device_memory_bytes": 80 * 2**30, "objectives": ["none"]})
    reason = "no usable GPU: this TensorFlow is built without CUDA (tensorflow-cpu?)"
    client.lease("box-gpu1-2", {"gpu": "1", "backend": "tensorflow", "unavailable": reason})
    page.goto("/workers")
    gpu0 = page.locator("#workers-table tr[data-worker='box-gpu0-1']")
    gpu0.wait_for()
    assert "NVIDIA H100 80GB HBM3, 80 GiB" in gpu0.inner_text() and "jax" in gpu0.inner_text()
    gpu1 = page.locator("#workers-table tr[data-worker='box-gpu1-2']").inner_text()
    assert "not leasing" in gpu1 and reason in gpu1
    screenshot(page, "workers-devices")


def _big_study_document(name: str, n: int) -> dict[str, Any]:
    """An export document of `n` complete trials with 6 values each: more learning-curve
    points than the dashboard draws with SVG, so its curves plot uses WebGL (scattergl)."""
    created = "2026-11-30T12:00:00+00:00"
    trials = [
        {
            "number": i,
            "params": {"x": (i % 97) / 97},
            "state": "complete",
            "value": ((i % 97) / 97 - 0.3) ** 2,
            "seed": i,
            "step": 5,
            "created_at": created,
            "values": [[step, ((i % 97) / 97 - 0.3) ** 2 + 1 / (step + 1)] for step in range(6)],
        }
        for i in range(n)
    ]
    study = {
        "name": name,
        "objective": "external",
        "objective_args": {},
        "metric": "value",
        "direction": "minimize",
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "strategy": {"name": "random"},
        "budget": {"max_trials": n, "max_parallel": 4},
        "seed": 1,
        "state": "done",
        "created_at": created,
    }
    return {"study": study, "trials": trials}


CSP_WATCH = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"
)


def test_the_dashboard_runs_under_its_csp_and_deletes_a_study_after_confirming(
    browser: Any, live_server: ServerProcess, tmp_path: Path
) -> None:
    """Every page works under the dashboard's Content-Security-Policy (no violation, WebGL
    plots included), and Delete asks first: dismissed, the study stays.

    Its own context, without the `page` fixture's bypass_csp; so no `wait_for_function`
    here: Playwright evaluates those strings in the page, which the policy forbids."""
    client = live_server.client()
    study = client.import_study(_big_study_document("csp-and-delete", 300))
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.add_init_script(TOKEN_SCRIPT)
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        shell = page.goto(f"/studies/{study.id}")
        assert "frame-ancestors 'none'" in shell.headers["content-security-policy"]
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator("#history-plot").get_attribute("data-points") == "300"
        page.click("a.tab[data-tab=curves]")
        page.wait_for_selector("#curves-plot[data-points]")
        points = page.locator("#curves-plot").get_attribute("data-points")
        assert int(points or 0) > 1000, (points, page.evaluate("window.__csp"))
        assert page.evaluate(
            "document.querySelector('#curves-plot').data.some(t => t.type === 'scattergl')"
        )
        assert page.locator("#curves-plot canvas").count() > 0, "drawn with WebGL"
        page.click("a.tab[data-tab=params]")
        page.wait_for_selector("#parallel-plot[data-points='300']")
        pages = (("/", "#studies-table"), ("/workers", "body[data-ready]"), ("/new", "#space"))
        for path, ready in pages:
            page.goto(path)
            page.wait_for_selector(ready)
        trial = client.trials(study.id, state="complete")[0]
        image = tmp_path / "samples.png"
        image.write_bytes(_png(16, 16))
        client.upload_artifact(trial.id, "samples.png", image, "image/png")
        page.goto(f"/trials/{trial.id}")
        page.click("#artifacts button.zoom")
        page.wait_for_selector("#lightbox img")
        page.keyboard.press("Escape")
        page.wait_for_selector("#lightbox", state="detached")
        assert page.evaluate("window.__csp") == []
        page.goto(f"/studies/{study.id}")
        page.wait_for_selector("body[data-ready=true]")
        page.click("#notes-edit")
        page.fill("#notes-text", "**kept** under the CSP")
        page.click("#notes-save")
        page.wait_for_selector("#study-notes strong:has-text('kept')")

        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("#delete-study")
        assert client.get_study(study.id).name == "csp-and-delete"
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#delete-study")
        page.wait_for_url(f"{live_server.url}/")
        page.wait_for_selector("body[data-ready=true]")
        assert client.find_study("csp-and-delete") is None
        assert page.evaluate("window.__csp") == []
    finally:
        context.close()
