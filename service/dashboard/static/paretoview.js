// The "Pareto front" tab of a study with several objectives: the objectives' scatter (two
// objectives: one plot; three: the three pairs), the front (the server's `pareto`, feasible
// non-dominated trials) highlighted, infeasible trials marked, and the hypervolume of the
// feasible trials over trial numbers. The hypervolume's reference point is the worst
// feasible value of each objective plus a tenth of its range (every objective flipped to
// minimization), so it is comparable along one study, not across studies.

import { get } from "./api.js";
import { loadPlotly } from "./plots.js";
import { fmt, h, notice, replace } from "./ui.js";

const PAGE = 1000;
const CONFIG = { displaylogo: false, responsive: true };
const COLORS = { trial: "#94a3b8", front: "#4f46e5", infeasible: "#dc2626", hv: "#0f172a" };

// The Pareto tab for `study`, or null when it has one objective.
export function paretoTab(study) {
  return study.objectives?.length >= 2 ? ["pareto", "Pareto front"] : null;
}

async function allTrials(studyId) {
  const out = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await get(`/studies/${studyId}/trials`, { state: "complete", offset, limit: PAGE });
    out.push(...page.data);
    if (out.length >= page.count || page.data.length === 0) return out;
  }
}

// 2-D hypervolume of minimized points against `ref` (a sweep over the first objective).
function hv2(points, ref) {
  const pts = points.filter((p) => p[0] < ref[0] && p[1] < ref[1]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let volume = 0;
  let yPrev = ref[1];
  for (const [x, y] of pts) {
    if (y < yPrev) {
      volume += (ref[0] - x) * (yPrev - y);
      yPrev = y;
    }
  }
  return volume;
}

// 2- or 3-D hypervolume (3-D: slices over the third objective).
export function hypervolume(points, ref) {
  if (ref.length === 2) return hv2(points, ref);
  const pts = points.filter((p) => p.every((v, j) => v < ref[j])).sort((a, b) => a[2] - b[2]);
  let volume = 0;
  for (let i = 0; i < pts.length; i++) {
    const top = i + 1 < pts.length ? pts[i + 1][2] : ref[2];
    if (top > pts[i][2]) volume += hv2(pts.slice(0, i + 1).map((p) => [p[0], p[1]]), ref.slice(0, 2)) * (top - pts[i][2]);
  }
  return volume;
}

function minimized(values, signs) {
  return values.map((v, j) => v * signs[j]);
}

// The hypervolume of the feasible trials after each trial (by number).
function hypervolumeHistory(trials, signs) {
  const feasible = trials.filter((t) => t.feasible !== false);
  if (!feasible.length) return { x: [], y: [] };
  const pts = feasible.map((t) => minimized(t.objective_values, signs));
  const k = signs.length;
  const ref = [...Array(k).keys()].map((j) => {
    const col = pts.map((p) => p[j]);
    const lo = Math.min(...col);
    const hi = Math.max(...col);
    return hi + 0.1 * (hi - lo || 1);
  });
  const x = [];
  const y = [];
  const seen = [];
  for (const t of trials) {
    if (t.feasible !== false) seen.push(minimized(t.objective_values, signs));
    x.push(t.number);
    y.push(hypervolume(seen, ref));
  }
  return { x, y };
}

function layout(extra) {
  return {
    margin: { l: 60, r: 20, t: 30, b: 50 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    font: { family: "system-ui, sans-serif", size: 12, color: "#1e293b" },
    legend: { orientation: "h", y: 1.12, x: 0 },
    hovermode: "closest",
    ...extra,
  };
}

function text(t) {
  return `#${t.number} ${JSON.stringify(t.params)}`;
}

async function scatter(el, trials, front, objectives, i, j) {
  const Plotly = await loadPlotly();
  const onFront = new Set(front.map((p) => p.trial_id));
  const groups = [
    ["trials", trials.filter((t) => t.feasible !== false && !onFront.has(t.id)), COLORS.trial, "circle"],
    ["infeasible", trials.filter((t) => t.feasible === false), COLORS.infeasible, "x"],
  ];
  const traces = groups
    .filter(([, rows]) => rows.length)
    .map(([name, rows, color, symbol]) => ({
      type: "scatter",
      mode: "markers",
      name,
      x: rows.map((t) => t.objective_values[i]),
      y: rows.map((t) => t.objective_values[j]),
      text: rows.map(text),
      marker: { color, symbol, size: 7, opacity: 0.7 },
    }));
  const sorted = [...front].sort((a, b) => a.values[i] - b.values[i]);
  traces.push({
    type: "scatter",
    mode: objectives.length === 2 ? "lines+markers" : "markers",
    line: { shape: objectives[i].direction === "minimize" ? "hv" : "vh", color: COLORS.front },
    name: "Pareto front",
    x: sorted.map((p) => p.values[i]),
    y: sorted.map((p) => p.values[j]),
    text: sorted.map((p) => `#${p.number} ${JSON.stringify(p.params)}`),
    marker: { color: COLORS.front, size: 10 },
  });
  const axis = (o) => ({ title: { text: `${o.metric} (${o.direction})` } });
  await Plotly.react(el, traces, layout({ xaxis: axis(objectives[i]), yaxis: axis(objectives[j]) }), CONFIG);
  el.dataset.points = String(trials.length);
  el.dataset.front = String(front.length);
}

export function paretoView(ctx) {
  const note = h("div");
  const pairs = h("div", { class: "grid-2", id: "pareto-plots" });
  const hv = h("div", { class: "plot", id: "hypervolume-plot" });
  const summary = h("p", { class: "muted small", id: "pareto-summary" });
  const el = h(
    "div",
    { id: "pareto-view" },
    h("section", { class: "card" }, h("h2", {}, "Pareto front"), summary, note, pairs),
    h("section", { class: "card" }, h("h2", {}, "Hypervolume over trials"), hv),
  );
  return {
    el,
    async draw() {
      const { study } = ctx;
      const objectives = study.objectives;
      const signs = objectives.map((o) => (o.direction === "minimize" ? 1 : -1));
      const trials = (await allTrials(study.id))
        .filter((t) => t.objective_values?.length === objectives.length)
        .sort((a, b) => a.number - b.number);
      const front = study.pareto ?? [];
      const infeasible = trials.filter((t) => t.feasible === false).length;
      summary.textContent = `${front.length} trial${front.length === 1 ? "" : "s"} on the front of ${trials.length} complete` + (infeasible ? `; ${infeasible} infeasible` : "");
      replace(note, trials.length ? [] : notice("No trial has completed yet."));
      const combos = objectives.length === 2 ? [[0, 1]] : [[0, 1], [0, 2], [1, 2]];
      if (pairs.children.length !== combos.length) {
        replace(pairs, combos.map((_, n) => h("div", { class: "plot", id: `pareto-plot-${n}` })));
      }
      await Promise.all(combos.map(([i, j], n) => scatter(pairs.children[n], trials, front, objectives, i, j)));
      const history = hypervolumeHistory(trials, signs);
      const Plotly = await loadPlotly();
      await Plotly.react(
        hv,
        [{ type: "scatter", mode: "lines", line: { shape: "hv", color: COLORS.hv }, name: "hypervolume", x: history.x, y: history.y }],
        layout({ xaxis: { title: { text: "trial" } }, yaxis: { title: { text: "hypervolume (feasible trials)" } } }),
        CONFIG,
      );
      hv.dataset.points = String(history.x.length);
      hv.dataset.last = history.y.length ? fmt(history.y[history.y.length - 1], 6) : "";
    },
  };
}
