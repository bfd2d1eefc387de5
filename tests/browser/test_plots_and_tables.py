"""The study and trial pages' plots and tables in a real browser against a real server:
log-scaled parameters in their own units, integer trial and step ticks, colour bars, learning
curves that can be told apart, the log-y history, sentences instead of blank plots, the
artifact lightbox, notes, and the trials table's filters, sort and CSV download."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import _png
from tests.support import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CREATED = "2026-11-30T12:00:00+00:00"
SPACE = {
    "batch_size": {"type": "int", "low": 16, "high": 460, "log": True},
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "act": {"type": "categorical", "choices": ["relu", "tanh"]},
}


def _trial(number: int, state: str, value: float | None, **extra: Any) -> dict[str, Any]:
    params = {
        "batch_size": [16, 32, 64, 128, 256, 460, 24, 90, 200][number % 9],
        "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 5e-4, 5e-3][number % 9],
        "act": "relu" if number % 3 else "tanh",
    }
    finished = state in ("complete", "pruned", "failed")
    return {
        "number": number,
        "params": params,
        "state": state,
        "value": value,
        "seed": number,
        "created_at": CREATED,
        "started_at": CREATED,
        "finished_at": CREATED if finished else None,
        **extra,
    }


def _document(name: str, trials: list[dict[str, Any]], state: str = "paused") -> dict[str, Any]:
    study = {
        "name": name,
        "objective": "external",
        "objective_args": {},
        "metric": "val_loss",
        "direction": "minimize",
        "space": SPACE,
        "strategy": {"name": "random"},
        "budget": {"max_trials": 50, "max_parallel": 4},
        "seed": 1,
        "state": state,
        "created_at": CREATED,
    }
    return {"study": study, "trials": trials}


# Where point `k` of trace `n` of the learning-curves plot is on the screen (to hover it).
POINT_ON_SCREEN = """([n, k]) => {
  const gd = document.querySelector('#curves-plot');
  const size = gd._fullLayout._size;
  const box = gd.getBoundingClientRect();
  const trace = gd.data[n];
  return [
    box.left + size.l + gd._fullLayout.xaxis.l2p(trace.x[k]),
    box.top + size.t + gd._fullLayout.yaxis.l2p(trace.y[k]),
  ];
}"""


def _curve(number: int) -> list[list[float]]:
    final = 0.2 + 0.07 * number
    return [[step, final + 1.0 / (step + 1)] for step in range(5)]


@pytest.fixture(scope="module")
def mixed(live_server: ServerProcess) -> int:
    """Nine trials: six complete (with curves), one pruned at step 2, two failed."""
    trials = []
    for n in range(9):
        if n == 6:
            trials.append(_trial(n, "pruned", 1.4, step=2, values=_curve(n)[:3]))
        elif n in (7, 8):
            trials.append(_trial(n, "failed", None, error=f"KeyError: 'units' (trial {n})"))
        else:
            value = 0.2 + 0.07 * n + 4
            trials.append(_trial(n, "complete", value, step=4, values=_curve(n)))
    return live_server.client().import_study(_document("plots-and-tables", trials)).id


def _ready(page: Any, path: str) -> None:
    page.goto(path)
    page.wait_for_selector("body[data-ready=true]")


def test_log_parameters_show_real_values_and_trial_axes_integers(page: Any, mixed: int) -> None:
    _ready(page, f"/studies/{mixed}")
    history = page.evaluate("document.querySelector('#history-plot').layout.xaxis")
    assert history["tickformat"] == "d" and history["dtick"] == 1
    ticks = page.locator("#history-plot .xtick text").all_text_contents()
    assert ticks and all(t.isdigit() for t in ticks), ticks

    page.click("a.tab[data-tab=params]")
    page.wait_for_selector("#parallel-plot[data-points='7']")
    dims = page.evaluate(
        "document.querySelector('#parallel-plot').data[0].dimensions"
        ".map(d => [d.label, d.ticktext || null])"
    )
    labels = dict(dims)
    assert "batch_size (log)" in labels and not any("log10" in k for k in labels)
    assert labels["batch_size (log)"] == ["20", "50", "100", "200"]
    assert labels["lr (log)"][0] == "1e-4" and labels["lr (log)"][-1] == "0.1"
    drawn = page.locator("#parallel-plot .axis .tick text").all_text_contents()
    assert "200" in drawn and not any(t.startswith("1.2") for t in drawn), drawn

    page.select_option("#contour-x", "batch_size")
    page.select_option("#contour-y", "lr")
    page.wait_for_function("document.querySelector('#contour-plot').layout.xaxis.type === 'log'")
    axes = page.evaluate(
        "(() => { const l = document.querySelector('#contour-plot').layout;"
        " return [l.xaxis.title.text, l.yaxis.type, l.yaxis.title.text]; })()"
    )
    assert axes == ["batch_size", "log", "lr"]
    x_ticks = page.locator("#contour-plot .xtick text").all_text_contents()
    assert "100" in x_ticks, x_ticks

    slices = page.locator(".slice")
    assert slices.count() == 3
    page.wait_for_function(
        "[...document.querySelectorAll('.slice')].every(s => s.dataset.points === '7')"
    )
    for k in range(3):
        marker = page.evaluate(f"document.querySelectorAll('.slice')[{k}].data[0].marker")
        assert marker["showscale"] is True and marker["colorbar"]["title"]["text"] == "trial"
    assert page.locator(".slice .colorbar").count() == 3
    screenshot(page, "parameters-log-axes")


def test_learning_curves_differ_in_colour_have_a_legend_highlight_and_the_best_bold(
    page: Any, mixed: int
) -> None:
    _ready(page, f"/studies/{mixed}#curves")
    page.wait_for_selector("#curves-plot[data-points]")
    traces = page.evaluate(
        "document.querySelector('#curves-plot').data"
        ".map(t => ({name: t.name, color: t.line.color, width: t.line.width, dash: t.line.dash}))"
    )
    assert len(traces) == 7
    assert len({t["color"] for t in traces}) == 7, "one colour per trial"
    best = [t for t in traces if t["name"].startswith("★")]
    assert [t["name"] for t in best] == [
        "★ trial 0 (best)",
        "★ trial 1 (best)",
        "★ trial 2 (best)",
    ]
    assert all(t["width"] > max(u["width"] for u in traces if u not in best) for t in best)
    assert [t["dash"] for t in traces if "pruned" in t["name"]] == ["dot"]
    assert page.locator("#curves-plot .legend .traces").count() == 7
    x_ticks = page.locator("#curves-plot .xtick text").all_text_contents()
    assert x_ticks == ["0", "1", "2", "3", "4"], x_ticks

    x, y = page.evaluate(POINT_ON_SCREEN, [4, 2])
    page.mouse.move(x, y)
    page.wait_for_selector("#curves-plot[data-highlighted]")
    assert page.locator("#curves-plot").get_attribute("data-highlighted") == "4"
    opacities = page.evaluate("document.querySelector('#curves-plot').data.map(t => t.opacity)")
    assert opacities[4] == 1 and all(o < 0.2 for k, o in enumerate(opacities) if k != 4)
    page.mouse.move(5, 5)
    page.wait_for_selector("#curves-plot:not([data-highlighted])")
    restored = page.evaluate("document.querySelector('#curves-plot').data.map(t => t.opacity)")
    assert restored[0] == 1 and min(restored) > 0.2
    screenshot(page, "learning-curves")


def test_history_log_y_toggle(page: Any, live_server: ServerProcess, mixed: int) -> None:
    _ready(page, f"/studies/{mixed}")
    assert page.evaluate("document.querySelector('#history-plot').layout.yaxis.type") == "linear"
    page.check("#history-logy")
    page.wait_for_function("document.querySelector('#history-plot').layout.yaxis.type === 'log'")
    page.uncheck("#history-logy")
    page.wait_for_function("document.querySelector('#history-plot').layout.yaxis.type === 'linear'")

    negative = [_trial(n, "complete", v) for n, v in enumerate([-1.0, 0.5, 2.0])]
    sid = live_server.client().import_study(_document("negative-values", negative)).id
    _ready(page, f"/studies/{sid}")
    toggle = page.locator("#history-logy")
    assert toggle.is_disabled() and "negative" in (toggle.get_attribute("title") or "")


def test_a_study_without_results_says_so_instead_of_blank_plots(
    page: Any, live_server: ServerProcess
) -> None:
    client = live_server.client()
    fresh = client.create_study(
        {
            "name": "nothing-yet",
            "objective": "external",
            "space": SPACE,
            "budget": {"max_trials": 5},
        }
    )
    _ready(page, f"/studies/{fresh.id}")
    history = page.locator("#history-plot")
    assert history.get_attribute("data-empty") == "true"
    assert "No trial has finished yet" in history.inner_text()
    assert page.locator("#history-plot .main-svg").count() == 0, "no blank axes"
    page.click("a.tab[data-tab=params]")
    page.wait_for_selector("#parallel-plot[data-empty=true]")
    assert "No trial has finished yet" in page.locator("#parallel-plot").inner_text()
    assert "No trial has finished yet" in page.locator("#contour-plot").inner_text()
    assert "No trial has finished yet" in page.locator("#slices-note").inner_text()
    assert page.locator("#slices").is_hidden()
    page.click("a.tab[data-tab=curves]")
    page.wait_for_selector("#curves-plot[data-empty=true]")
    assert "No trial has finished yet" in page.locator("#curves-plot").inner_text()
    screenshot(page, "study-empty")


def test_a_study_whose_trials_all_failed_says_so_with_the_error(
    page: Any, live_server: ServerProcess
) -> None:
    failed = [_trial(n, "failed", None, error=f"KeyError: 'units' (attempt {n})") for n in range(3)]
    sid = live_server.client().import_study(_document("all-failed", failed, "done")).id
    _ready(page, f"/studies/{sid}")
    banner = page.locator("#all-failed").inner_text()
    assert "All 3 finished trials failed" in banner
    assert "KeyError: 'units' (attempt 2)" in banner
    history = page.locator("#history-plot")
    assert history.get_attribute("data-empty") == "true"
    assert "All 3 finished trials failed" in history.inner_text()
    page.click("a.tab[data-tab=params]")
    page.wait_for_selector("#parallel-plot[data-empty=true]")
    assert "All 3 finished trials failed" in page.locator("#parallel-plot").inner_text()
    errors = page.locator("#trials-table td[data-col=error]").all_inner_texts()
    assert sorted(errors) == [f"KeyError: 'units' (attempt {n})" for n in range(3)]
    screenshot(page, "study-all-failed")


def test_a_study_stopped_by_failing_trials_is_failed_in_the_studies_list(
    page: Any, live_server: ServerProcess
) -> None:
    client = live_server.client()
    study = client.create_study({
        "name": "fails-in-a-row",
        "objective": "external",
        "metric": "loss",
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "strategy": {"name": "random"},
        "budget": {"max_trials": 20, "max_parallel": 2, "max_consecutive_failures": 2},
    })
    for trial in client.suggest(study.id, count=2):
        client.fail(trial, "CUDA out of memory")
    stopped = client.get_study(study.id)
    assert (stopped.state, stopped.stop_kind) == ("stopped", "failures")
    _ready(page, "/")
    row = page.locator(f"#studies-table tr[data-study='{study.id}']")
    row.wait_for()
    assert row.locator(".badge").first.inner_text() == "failed"
    assert "CUDA out of memory" in row.locator(".stop-reason").inner_text()
    assert row.locator("td.progress-failed").count() == 1
    assert row.locator("td.num").nth(1).inner_text() == "—", "no trials/h for a failed study"


def test_an_artifact_thumbnail_opens_a_lightbox_that_escape_or_a_click_closes(
    page: Any, live_server: ServerProcess, mixed: int, tmp_path: Path
) -> None:
    client = live_server.client()
    trial = client.trials(mixed, state="complete")[0]
    image = tmp_path / "samples.png"
    image.write_bytes(_png(40, 24))
    client.upload_artifact(trial.id, "samples.png", image, "image/png")
    _ready(page, f"/trials/{trial.id}")
    thumb = page.locator("#artifacts img")
    thumb.wait_for()
    page.wait_for_function("document.querySelector('#artifacts img').naturalWidth === 40")
    small = thumb.bounding_box()
    thumb.click()
    big = page.locator("#lightbox img")
    big.wait_for()
    box = big.bounding_box()
    assert small and box and box["width"] > 2 * small["width"], (small, box)
    assert "samples.png" in page.locator("#lightbox").inner_text()
    screenshot(page, "artifact-lightbox")
    page.keyboard.press("Escape")
    page.wait_for_selector("#lightbox", state="detached")
    thumb.click()
    page.locator("#lightbox").click(position={"x": 10, "y": 10})
    page.wait_for_selector("#lightbox", state="detached")


def test_notes_render_markdown_and_never_html(
    page: Any, live_server: ServerProcess, mixed: int
) -> None:
    _ready(page, f"/studies/{mixed}")
    assert "No notes yet" in page.locator("#study-notes").inner_text()
    page.click("#notes-edit")
    notes = (
        "# Findings\n\n"
        "Large **batch_size** with *high* lr diverges; see `trial 6`.\n\n"
        "- try lr below 1e-2\n- keep relu\n\n"
        "<script>window.__pwned = 1</script> <img src=x onerror=window.__pwned=2>\n\n"
        "[docs](https://example.org/guide) and [bad](javascript:alert(1))"
    )
    page.fill("#notes-text", notes)
    page.click("#notes-save")
    page.wait_for_selector("#study-notes .markdown")
    rendered = page.locator("#study-notes .markdown")
    assert rendered.locator("h3").inner_text() == "Findings"
    assert rendered.locator("strong").inner_text() == "batch_size"
    assert rendered.locator("code").inner_text() == "trial 6"
    assert rendered.locator("li").all_inner_texts() == ["try lr below 1e-2", "keep relu"]
    assert rendered.locator("script, img").count() == 0
    assert "<script>window.__pwned = 1</script>" in rendered.inner_text()
    links = rendered.locator("a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.org/guide"
    assert "[bad](javascript:alert(1))" in rendered.inner_text()
    assert page.evaluate("window.__pwned === undefined")
    assert live_server.client().get_study(mixed).notes == notes
    _ready(page, f"/studies/{mixed}")
    assert page.locator("#study-notes h3").inner_text() == "Findings"
    page.wait_for_selector("#live.live-live")
    elsewhere = {"notes": "# Changed elsewhere"}
    live_server.client().request("PATCH", f"/studies/{mixed}", json=elsewhere)
    page.wait_for_selector("#study-notes h3:has-text('Changed elsewhere')")


def _table_numbers(page: Any) -> list[int]:
    return [
        int(n)
        for n in page.eval_on_selector_all(
            "#trials-table tbody tr", "rows => rows.map(r => r.dataset.number)"
        )
    ]


def _wait_rows(page: Any, numbers: list[int]) -> None:
    expected = ",".join(str(n) for n in numbers)
    page.wait_for_function(
        "[...document.querySelectorAll('#trials-table tbody tr')]"
        f".map(r => r.dataset.number).join(',') === '{expected}'"
    )


def test_trials_table_filters_and_sorts_by_parameter_and_downloads_csv(
    page: Any, mixed: int
) -> None:
    _ready(page, f"/studies/{mixed}")
    _wait_rows(page, [8, 7, 6, 5, 4, 3, 2, 1, 0])
    pruned = page.locator("#trials-table tr[data-number='6'] td[data-col=pruned-step]")
    assert pruned.inner_text() == "2"
    failed = page.locator("#trials-table tr[data-number='7'] td[data-col=error]")
    assert failed.inner_text() == "KeyError: 'units' (trial 7)"

    page.click("#trials-table th[data-order='params.batch_size']")
    _wait_rows(page, [0, 6, 1, 2, 7, 3, 8, 4, 5])
    page.click("#trials-table th[data-order='params.batch_size']")
    _wait_rows(page, [5, 4, 8, 3, 7, 2, 1, 6, 0])

    page.select_option("#filter-target", "params.lr")
    page.fill("#filter-min", "0.001")
    page.fill("#filter-max", "0.05")
    page.click("#filter-add")
    _wait_rows(page, [5, 4, 8, 3, 2])
    chips = page.locator("#filter-conditions .condition").all_inner_texts()
    labels = page.eval_on_selector_all(
        "#filter-conditions .condition", "cs => cs.map(c => c.firstChild.textContent)"
    )
    assert labels == ["lr ≥ 0.001", "lr ≤ 0.05"], chips
    page.select_option("#filter-target", "params.act")
    page.select_option("#filter-choice", "relu")
    page.click("#filter-add")
    _wait_rows(page, [5, 4, 8, 2])
    page.select_option("#filter-target", "value")
    page.fill("#filter-max", "4.5")
    page.click("#filter-add")
    _wait_rows(page, [4, 2])
    screenshot(page, "trials-filtered")

    with page.expect_download() as download_info:
        page.click("#trials-csv")
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert [int(r["number"]) for r in rows] == [4, 2]
    assert {r["params_act"] for r in rows} == {"relu"}
    assert all(0.001 <= float(r["params_lr"]) <= 0.05 for r in rows)

    page.click("#filter-conditions .condition[data-where='value<=4.5'] button")
    _wait_rows(page, [5, 4, 8, 2])
