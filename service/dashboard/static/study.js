// The study page: header with progress and actions, then tabs (overview: history + trials
// table; parameters; GP model; learning curves). Live: the study's event stream updates the
// header, the history columns and the visible tab in place; the history is also re-read
// every RESYNC_MS while things change, so nothing missed around a reconnect stays missing.

import { del, followStudy, get } from "./api.js";
import { gpView } from "./gpview.js";
import { notesCard } from "./notes.js";
import { paramsView } from "./paramsview.js";
import { paretoTab, paretoView } from "./paretoview.js";
import { curvesPlot, historyPlot, loadPlotly, nothingToPlot } from "./plots.js";
import { perHour, studyActions } from "./studies.js";
import { trialsTable } from "./trialstable.js";
import { badge, errorText, finishedCount, fmt, h, notice, progress, replace, throttle } from "./ui.js";

const HISTORY_POINTS = 1000;
const BEST_CURVES = 3;
const RESYNC_MS = 15000;
const TABS = [
  ["overview", "Overview"],
  ["params", "Parameters"],
  ["gp", "GP model"],
  ["curves", "Learning curves"],
];
const COLUMNS = [
  "trial_id",
  "state",
  "value",
  "best",
  "source",
  "acquisition",
  "acquisition_value",
  "predicted_mean",
  "predicted_std",
];

function better(direction) {
  return direction === "minimize" ? (a, b) => a < b : (a, b) => a > b;
}

function recomputeBest(hist) {
  const isBetter = better(hist.direction);
  let best = null;
  hist.best = hist.number.map((_, i) => {
    const v = hist.value[i];
    if (hist.state[i] === "complete" && v !== null && (best === null || isBetter(v, best))) best = v;
    return best;
  });
}

// Applies one trial event to the history columns (every improvement is kept server-side, so
// the best-so-far recomputed over the kept trials is exact).
function merge(hist, trial) {
  let i = hist.number.indexOf(trial.number);
  const s = trial.suggestion ?? {};
  const row = {
    trial_id: trial.id,
    state: trial.state,
    value: trial.value,
    best: null,
    source: s.source ?? trial.source,
    acquisition: s.acquisition ?? null,
    acquisition_value: s.acquisition_value ?? null,
    predicted_mean: s.mean ?? null,
    predicted_std: s.std ?? null,
  };
  if (i < 0) {
    i = hist.number.length;
    while (i > 0 && hist.number[i - 1] > trial.number) i--;
    hist.number.splice(i, 0, trial.number);
    for (const c of COLUMNS) hist[c].splice(i, 0, row[c]);
    for (const name of Object.keys(hist.params)) hist.params[name].splice(i, 0, trial.params[name]);
    hist.count += 1;
  } else {
    for (const c of COLUMNS) hist[c][i] = row[c];
  }
  recomputeBest(hist);
}

// Deletes the study after the user confirms, then goes back to the studies list. Only the
// study's owner (or an admin) may: anyone else sees the server's 403 in `message`.
function deleteButton(study, message) {
  return h(
    "button",
    {
      class: "btn btn-small btn-danger",
      id: "delete-study",
      onclick: async () => {
        const question = `Delete study "${study.name}" with its ${study.n_trials} trials and their artifacts? This cannot be undone.`;
        if (!window.confirm(question)) return;
        try {
          await del(`/studies/${study.id}`);
          window.location.assign("/");
        } catch (error) {
          replace(message, notice(`Delete failed: ${errorText(error)}`, "error"));
        }
      },
    },
    "Delete",
  );
}

function allFailed(study) {
  const failed = study.counts.failed ?? 0;
  return failed > 0 && failed === finishedCount(study);
}

function allFailedText(study, error) {
  const n = study.counts.failed;
  const all = n === 1 ? "The only finished trial" : `All ${n} finished trials`;
  return h(
    "span",
    { id: "all-failed" },
    `${all} failed: no result yet. `,
    error ? ["Latest error: ", h("code", {}, error)] : "",
  );
}

// The latest failed trial's error, for the all-failed notice (null when none failed).
async function latestError(studyId) {
  const page = await get(`/studies/${studyId}/trials`, { state: "failed", limit: 1, order: "number", descending: true });
  return page.data[0]?.error ?? null;
}

// The numbers of the study's best complete trials (emphasised among the learning curves).
function bestNumbers(hist, n) {
  const sign = hist.direction === "minimize" ? 1 : -1;
  const rows = hist.number
    .map((num, i) => ({ num, v: hist.value[i], state: hist.state[i] }))
    .filter((r) => r.state === "complete" && r.v !== null)
    .sort((a, b) => sign * (a.v - b.v));
  return new Set(rows.slice(0, n).map((r) => r.num));
}

// The history card's "log y" switch: off, and disabled with the reason, while any value is <= 0.
function logToggle(ctx, redraw) {
  const box = h("input", { type: "checkbox", id: "history-logy" });
  box.addEventListener("change", () => {
    ctx.logY = box.checked;
    redraw();
  });
  return {
    el: h("label", { class: "muted small toggle" }, box, " log scale"),
    update() {
      const nonPositive = ctx.hist.value.some((v) => v !== null && v <= 0);
      box.disabled = nonPositive;
      box.title = nonPositive ? "Some values are 0 or negative: a log scale cannot show them." : "";
      if (nonPositive) box.checked = ctx.logY = false;
    },
  };
}

function header(ctx, refresh) {
  const { study } = ctx;
  const message = h("div");
  const done = finishedCount(study);
  const best = study.best
    ? h("a", { href: `/trials/${study.best.trial_id}`, id: "best-value" }, fmt(study.best.value, 6))
    : h("span", { id: "best-value" }, "—");
  const stat = (label, value) => h("div", { class: "stat" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value));
  return h(
    "section",
    { class: "card study-head" },
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("div", { class: "crumbs" }, h("a", { href: "/" }, "Studies"), " / ", `#${study.id}`),
        h("h1", {}, study.name, " ", badge(study.state), " ", ctx.liveBadge),
        h(
          "div",
          { class: "muted" },
          `${study.objective} · ${study.direction} ${study.metric} · ${study.strategy.name}`,
          study.strategy.name === "gp" ? ` (${study.strategy.acquisition})` : "",
          ` · up to ${study.budget.max_parallel} in parallel`,
          ` · owner ${study.owner ?? "none (admins)"}`,
        ),
      ),
      h("div", { class: "actions" }, studyActions(study, refresh, message), deleteButton(study, message)),
    ),
    message,
    h(
      "div",
      { class: "stats" },
      stat("progress", progress(done, study.budget.max_trials)),
      stat("best", best),
      stat("trials / h", fmt(perHour(study), 3)),
      stat("running", h("span", { id: "running-count" }, study.counts.running ?? 0)),
      stat("queued", study.counts.queued ?? 0),
      stat("pruned / failed", `${study.counts.pruned ?? 0} / ${study.counts.failed ?? 0}`),
    ),
    allFailed(study) ? notice(allFailedText(study, ctx.lastError), "error") : null,
    study.stop_reason ? notice(`Stopped: ${study.stop_reason}`) : null,
    study.suggest_error
      ? notice(
          `Suggestions failing (retried ${study.suggest_retry_at ? `after ${study.suggest_retry_at}` : "soon"}): ${study.suggest_error}`,
          "error",
        )
      : null,
    study.warnings.map((w) => notice(w, "warn")),
    study.datasets?.length
      ? h(
          "p",
          { class: "muted small", id: "study-datasets" },
          "Data: ",
          study.datasets
            .map((d) => `${d.name} (${d.source}, ${d.n_train} train / ${d.n_val} val, ${d.trials} trial${d.trials === 1 ? "" : "s"})`)
            .join("; "),
        )
      : null,
  );
}

function curvesView(ctx) {
  const plot = h("div", { class: "plot", id: "curves-plot" });
  const note = h("div");
  return {
    el: h(
      "section",
      { class: "card", id: "curves-view" },
      h("h2", {}, "Learning curves"),
      h(
        "p",
        { class: "muted small" },
        `Intermediate values of running trials (live) and of the latest 200 others; the ${BEST_CURVES} best trials bold (★), pruned ones dotted. Hover a curve to pick it out; click a legend entry to hide it.`,
      ),
      note,
      plot,
    ),
    async draw() {
      const data = await get(`/studies/${ctx.study.id}/curves`, { limit: 200 });
      const empty = finishedCount(ctx.study) + (ctx.study.counts.running ?? 0) === 0 || allFailed(ctx.study)
        ? nothingToPlot(ctx.study.counts)
        : "No trial has reported an intermediate value yet.";
      await curvesPlot(plot, data.data, ctx.study.metric, { best: bestNumbers(ctx.hist, BEST_CURVES), empty });
    },
  };
}

export async function render(main, studyId) {
  loadPlotly();
  const ctx = { liveBadge: h("span", { class: "live", id: "live" }, "connecting…") };
  try {
    [ctx.study, ctx.hist] = await Promise.all([
      get(`/studies/${studyId}`),
      get(`/studies/${studyId}/history`, { max_points: HISTORY_POINTS }),
    ]);
  } catch (error) {
    replace(main, notice(`Could not load study ${studyId}: ${errorText(error)}`, "error"));
    return;
  }
  const headSlot = h("div");
  const refreshHead = async () => {
    ctx.study = await get(`/studies/${studyId}`);
    await showHead();
  };
  let errorsSeen = -1;
  const showHead = async () => {
    if (allFailed(ctx.study) && ctx.study.counts.failed !== errorsSeen) {
      errorsSeen = ctx.study.counts.failed;
      ctx.lastError = await latestError(studyId).catch(() => null);
    }
    replace(headSlot, header(ctx, refreshHead));
  };
  await showHead();

  const historyEl = h("div", { class: "plot", id: "history-plot" });
  const trials = trialsTable(ctx.study);
  const notes = notesCard(ctx);
  const drawHistory = () => {
    logY.update();
    return historyPlot(historyEl, ctx.hist, ctx.study.metric, { logY: ctx.logY, empty: nothingToPlot(ctx.study.counts) });
  };
  const logY = logToggle(ctx, drawHistory);
  const views = {
    overview: {
      el: h(
        "div",
        {},
        notes.el,
        h(
          "section",
          { class: "card" },
          h("div", { class: "card-head" }, h("h2", {}, "Optimization history"), logY.el),
          historyEl,
        ),
        h("section", { class: "card" }, h("h2", {}, "Trials"), trials.el),
      ),
      draw: drawHistory,
    },
    params: paramsView(ctx),
    gp: gpView(ctx),
    curves: curvesView(ctx),
  };
  const tabs = [...TABS, paretoTab(ctx.study)].filter(Boolean);
  if (paretoTab(ctx.study)) views.pareto = paretoView(ctx);
  const drawn = new Set();
  const tabBar = h("nav", { class: "tabs", role: "tablist" });
  const panels = h("div", {}, Object.entries(views).map(([key, v]) => h("div", { class: "panel", dataset: { tab: key } }, v.el)));
  let active = null;

  async function show(key) {
    active = key;
    replace(
      tabBar,
      tabs.map(([k, label]) => h("a", { href: `#${k}`, role: "tab", class: k === key ? "tab active" : "tab", dataset: { tab: k } }, label)),
    );
    for (const panel of panels.children) panel.hidden = panel.dataset.tab !== key;
    const full = !drawn.has(key);
    drawn.add(key);
    try {
      await views[key].draw({ full });
    } catch (error) {
      views[key].el.prepend(notice(errorText(error), "error"));
    }
  }

  const tabFromHash = () => (tabs.some(([k]) => `#${k}` === window.location.hash) ? window.location.hash.slice(1) : "overview");
  window.addEventListener("hashchange", () => show(tabFromHash()));
  replace(main, headSlot, tabBar, panels);

  const redraw = throttle(() => active && views[active].draw({ full: active === "curves" }), 700);
  let dirty = false;
  followStudy(
    studyId,
    (event, data) => {
      if (event === "study") {
        ctx.study = data;
        trials.setStudy(data);
        notes.update();
        showHead();
      } else if (event === "trial") {
        merge(ctx.hist, data);
        dirty = true;
        trials.refreshSoon();
        redraw();
      }
    },
    (state) => {
      ctx.liveBadge.textContent = state === "live" ? "● live" : "reconnecting…";
      ctx.liveBadge.className = `live live-${state}`;
    },
  );
  setInterval(async () => {
    if (!dirty) return;
    dirty = false;
    ctx.hist = await get(`/studies/${studyId}/history`, { max_points: HISTORY_POINTS });
    redraw();
  }, RESYNC_MS);

  await Promise.all([show(tabFromHash()), trials.refresh()]);
  performance.mark("tunesmith-ready");
  document.body.dataset.ready = "true";
}
