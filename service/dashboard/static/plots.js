// Plotly figures. Plotly itself (the file the `plotly` wheel ships) is loaded once, lazily.
// Rules: plots with more than GL_ABOVE points use WebGL traces; every figure is drawn with
// Plotly.react so live updates redraw in place; a plot element gets data-points (how many
// points it shows) so tests and benchmarks can tell that it has data.

const GL_ABOVE = 1000;
const CONFIG = { displaylogo: false, responsive: true };
const COLORS = {
  complete: "#4f46e5",
  pruned: "#f59e0b",
  failed: "#dc2626",
  running: "#059669",
  queued: "#94a3b8",
  best: "#0f172a",
};
let loading = null;

export function loadPlotly() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/plotly.min.js";
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("could not load /static/plotly.min.js"));
      document.head.append(script);
    });
  }
  return loading;
}

function layout(extra = {}) {
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

async function draw(el, traces, lay, points) {
  const Plotly = await loadPlotly();
  if (el.dataset.empty) {
    el.replaceChildren();
    delete el.dataset.empty;
  }
  await Plotly.react(el, traces, lay, CONFIG);
  el.dataset.points = String(points);
}

// A sentence instead of blank axes: the plot element keeps its id, shows `message` and
// reports data-points="0" and data-empty="true".
export async function sayInstead(el, message) {
  const Plotly = await loadPlotly();
  Plotly.purge(el);
  const p = document.createElement("p");
  p.className = "plot-empty";
  p.textContent = message;
  el.replaceChildren(p);
  el.dataset.points = "0";
  el.dataset.empty = "true";
  delete el.dataset.hoverBound;
}

// Why a study's plots have nothing to show, from its trial counts (GET /studies/{id}).
export function nothingToPlot(counts) {
  const failed = counts.failed ?? 0;
  const finished = (counts.complete ?? 0) + (counts.pruned ?? 0) + failed;
  if (finished > 0 && failed === finished) {
    const all = failed === 1 ? "The only finished trial" : `All ${failed} finished trials`;
    return `${all} failed, so there is nothing to plot: see the error column in the trials table (Overview).`;
  }
  const waiting = (counts.running ?? 0) + (counts.queued ?? 0);
  return waiting > 0
    ? `No trial has finished yet (${waiting} running or queued): plots appear with the first result.`
    : "No trial has finished yet: plots appear with the first result.";
}

// Axis settings for trial numbers and steps: integer ticks only (one per unit on short ranges).
function integerAxis(title, values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = values.length ? hi - lo : 0;
  return { title: { text: title }, tickformat: "d", ...(span <= 10 ? { dtick: 1, tick0: 0 } : {}) };
}

// Ticks in a log-scaled parameter's own units for an axis drawn in log10 coordinates: the
// densest of 1..9, 1-2-5, 1-3 or 1 times each power of ten inside [low, high] that gives at
// most `most` ticks (every k-th power of ten on very wide ranges; the bounds when none fit).
export function logTicks(low, high, most = 9) {
  const lo = Math.floor(Math.log10(low));
  const hi = Math.ceil(Math.log10(high));
  const inside = (v) => v >= low * (1 - 1e-9) && v <= high * (1 + 1e-9);
  const withMantissas = (mantissas, stride = 1) => {
    const out = [];
    for (let e = lo; e <= hi; e += stride) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** e).toPrecision(12));
        if (inside(v)) out.push(v);
      }
    }
    return out;
  };
  let ticks = null;
  for (const mantissas of [[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 5], [1, 3], [1]]) {
    const candidate = withMantissas(mantissas);
    if (candidate.length <= most) {
      ticks = candidate;
      break;
    }
  }
  ticks ??= withMantissas([1], Math.ceil((hi - lo + 1) / most));
  if (ticks.length < 2) ticks = [low, high];
  return {
    tickvals: ticks.map((v) => Math.log10(v)),
    ticktext: ticks.map((v) => tickLabel(v)),
  };
}

// The same ticks for a Plotly log axis (whose tick values are in data units), replacing its
// default minor labels ("2", "5", "100µ").
export function logAxisTicks(low, high, most = 9) {
  const { tickvals, ticktext } = logTicks(low, high, most);
  return { tickmode: "array", tickvals: tickvals.map((t) => 10 ** t), ticktext };
}

function tickLabel(v) {
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return v.toExponential(0).replace("e+", "e");
  return String(Number(v.toPrecision(3)));
}

function scatterType(n) {
  return n > GL_ABOVE ? "scattergl" : "scatter";
}

function isLog(space, name) {
  return Boolean(space?.[name]?.log);
}

// Optimization history: every trial with a value, by state, and the best-so-far line.
// `opts.logY`: a log value axis; `opts.empty`: the sentence shown when nothing has a value.
export function historyPlot(el, hist, metric, opts = {}) {
  const traces = [];
  let points = 0;
  for (const state of ["complete", "pruned"]) {
    const x = [];
    const y = [];
    const text = [];
    hist.number.forEach((n, i) => {
      if (hist.state[i] === state && hist.value[i] !== null) {
        x.push(n);
        y.push(hist.value[i]);
        text.push(`trial ${n}`);
      }
    });
    points += x.length;
    traces.push({
      type: scatterType(x.length),
      mode: "markers",
      name: state,
      x,
      y,
      text,
      marker: { color: COLORS[state], size: 6, opacity: 0.75 },
    });
  }
  const bx = [];
  const by = [];
  hist.number.forEach((n, i) => {
    if (hist.best[i] !== null) {
      bx.push(n);
      by.push(hist.best[i]);
    }
  });
  traces.push({
    type: scatterType(bx.length),
    mode: "lines",
    name: "best so far",
    x: bx,
    y: by,
    line: { color: COLORS.best, width: 2, shape: "hv" },
  });
  if (points === 0 && opts.empty) return sayInstead(el, opts.empty);
  const title = hist.downsampled
    ? `${hist.number.length} of ${hist.count} trials shown (every improvement kept)`
    : "";
  return draw(
    el,
    traces,
    layout({
      title: { text: title, font: { size: 12 }, x: 1, xanchor: "right" },
      xaxis: { ...integerAxis("trial", hist.number), zeroline: false },
      yaxis: { title: { text: metric }, zeroline: false, type: opts.logY ? "log" : "linear" },
    }),
    points,
  );
}

function finite(hist) {
  const rows = [];
  hist.number.forEach((n, i) => {
    if ((hist.state[i] === "complete" || hist.state[i] === "pruned") && hist.value[i] !== null) {
      rows.push(i);
    }
  });
  return rows;
}

// Conditional parameters are absent from the trials that do not use them.
function present(v) {
  return v !== null && v !== undefined;
}

function reversed(direction) {
  return direction === "minimize";
}

// Parallel coordinates: one axis per searchable parameter, then the value.
export function parallelPlot(el, hist, study, opts = {}) {
  const rows = finite(hist);
  if (rows.length === 0 && opts.empty) return sayInstead(el, opts.empty);
  const dims = [];
  for (const [name, spec] of Object.entries(study.space)) {
    if (spec.type === "fixed") continue;
    const raw = rows.map((i) => hist.params[name][i]);
    if (spec.type === "categorical") {
      // A conditional parameter a trial did not use gets its own "inactive" tick.
      const labels = spec.choices.map(String);
      const inactive = raw.some((v) => !present(v));
      const ticks = inactive ? [...labels, "inactive"] : labels;
      dims.push({
        label: name,
        values: raw.map((v) => (present(v) ? labels.indexOf(String(v)) : labels.length)),
        tickvals: ticks.map((_, k) => k),
        ticktext: ticks,
      });
    } else {
      // Numeric: a log parameter sits at log10 positions with ticks in its own units; an
      // inactive value sits one tenth of the range below it, labelled so.
      const lo = spec.log ? Math.log10(spec.low) : spec.low;
      const hi = spec.log ? Math.log10(spec.high) : spec.high;
      const below = lo - 0.1 * (hi - lo || 1);
      const values = raw.map((v) => (present(v) ? (spec.log ? Math.log10(v) : v) : below));
      const dim = { label: spec.log ? `${name} (log)` : name, values, range: [lo, hi] };
      if (spec.log) Object.assign(dim, logTicks(spec.low, spec.high));
      if (raw.some((v) => !present(v))) {
        const tickvals = dim.tickvals ?? Array.from({ length: 5 }, (_, k) => lo + (k * (hi - lo)) / 4);
        const ticktext = dim.ticktext ?? tickvals.map((t) => Number(t.toPrecision(3)).toString());
        Object.assign(dim, {
          range: [below, hi],
          tickvals: [below, ...tickvals],
          ticktext: ["inactive", ...ticktext],
        });
      }
      dims.push(dim);
    }
  }
  const values = rows.map((i) => hist.value[i]);
  dims.push({ label: study.metric, values });
  return draw(
    el,
    [
      {
        type: "parcoords",
        dimensions: dims,
        line: {
          color: values,
          colorscale: "Viridis",
          reversescale: reversed(study.direction),
          showscale: true,
        },
      },
    ],
    layout({ margin: { l: 70, r: 70, t: 50, b: 30 } }),
    rows.length,
  );
}

export function importancePlot(el, imp) {
  const data = [...imp.data].reverse();
  return draw(
    el,
    [
      {
        type: "bar",
        orientation: "h",
        x: data.map((d) => d.importance),
        y: data.map((d) => d.name),
        error_x: { type: "data", array: data.map((d) => d.std), color: "#94a3b8" },
        marker: { color: COLORS.complete },
      },
    ],
    layout({
      margin: { l: 120, r: 20, t: 20, b: 40 },
      xaxis: { title: { text: "share of importance" }, range: [0, 1] },
      height: Math.max(180, 40 * data.length + 60),
    }),
    data.length,
  );
}

// One slice per searchable parameter: value against the parameter, coloured by trial number.
export function slicePlot(el, hist, study, name, opts = {}) {
  const rows = finite(hist).filter((i) => present(hist.params[name][i]));
  if (rows.length === 0 && opts.empty) return sayInstead(el, opts.empty);
  const spec = study.space[name];
  const numbers = rows.map((i) => hist.number[i]);
  return draw(
    el,
    [
      {
        type: scatterType(rows.length),
        mode: "markers",
        x: rows.map((i) => hist.params[name][i]),
        y: rows.map((i) => hist.value[i]),
        text: rows.map((i) => `trial ${hist.number[i]}`),
        marker: {
          size: 6,
          color: numbers,
          colorscale: [
            [0, "#c7d2fe"],
            [1, "#1e1b4b"],
          ],
          opacity: 0.85,
          showscale: true,
          colorbar: { title: { text: "trial", side: "right" }, thickness: 10, tickformat: "d", len: 0.9 },
        },
      },
    ],
    layout({
      margin: { l: 55, r: 10, t: 10, b: 45 },
      height: 260,
      xaxis: { title: { text: name }, ...(spec.log ? { type: "log", ...logAxisTicks(spec.low, spec.high, 5) } : {}) },
      yaxis: { title: { text: study.metric } },
    }),
    rows.length,
  );
}

// Where each trial sits on a contour axis: categorical choices at 0..k-1 (labelled), numbers
// as they are (a log parameter's axis is a Plotly log axis, so its ticks are real values).
function axisCoords(spec, values) {
  if (spec.type === "categorical") {
    const labels = spec.choices.map(String);
    return { coords: values.map((v) => labels.indexOf(String(v))), labels, log: false };
  }
  return { coords: values, labels: null, log: Boolean(spec.log) };
}

function gridPoints(spec) {
  if (spec.type === "categorical") return spec.choices.map((_, k) => k);
  const lo = spec.log ? Math.log10(spec.low) : spec.low;
  const hi = spec.log ? Math.log10(spec.high) : spec.high;
  const n = spec.type === "int" ? Math.min(spec.high - spec.low + 1, 21) : 21;
  return Array.from({ length: n }, (_, k) => lo + (k * (hi - lo)) / (n - 1));
}

// Grid points in the parameter's own units (log-spaced for a log parameter).
function gridValues(spec) {
  const points = gridPoints(spec);
  return spec.log ? points.map((p) => 10 ** p) : points;
}

function nearest(centers, v) {
  let best = 0;
  for (let k = 1; k < centers.length; k++) {
    if (Math.abs(centers[k] - v) < Math.abs(centers[best] - v)) best = k;
  }
  return best;
}

function axisLayout(name, spec, axis, centers) {
  const out = { title: { text: name } };
  if (axis.labels) Object.assign(out, { tickvals: centers, ticktext: axis.labels });
  if (axis.log) Object.assign(out, { type: "log", ...logAxisTicks(spec.low, spec.high) });
  return out;
}

// Contour of the best value seen in each cell of a grid over two parameters, with the trials.
export function contourPlot(el, hist, study, nx, ny, opts = {}) {
  const rows = finite(hist).filter(
    (i) => present(hist.params[nx][i]) && present(hist.params[ny][i]),
  );
  if (rows.length === 0 && opts.empty) return sayInstead(el, opts.empty);
  const ax = axisCoords(study.space[nx], rows.map((i) => hist.params[nx][i]));
  const ay = axisCoords(study.space[ny], rows.map((i) => hist.params[ny][i]));
  const cx = gridValues(study.space[nx]);
  const cy = gridValues(study.space[ny]);
  const near = (axis, centers, v) =>
    axis.log ? nearest(centers.map(Math.log10), Math.log10(v)) : nearest(centers, v);
  const z = cy.map(() => cx.map(() => null));
  const better = study.direction === "minimize" ? (a, b) => a < b : (a, b) => a > b;
  rows.forEach((i, k) => {
    const gx = near(ax, cx, ax.coords[k]);
    const gy = near(ay, cy, ay.coords[k]);
    const v = hist.value[i];
    if (z[gy][gx] === null || better(v, z[gy][gx])) z[gy][gx] = v;
  });
  return draw(
    el,
    [
      {
        type: "contour",
        x: cx,
        y: cy,
        z,
        connectgaps: true,
        colorscale: "Viridis",
        reversescale: reversed(study.direction),
        contours: { coloring: "heatmap" },
        colorbar: { title: { text: study.metric } },
      },
      {
        type: scatterType(rows.length),
        mode: "markers",
        x: ax.coords,
        y: ay.coords,
        text: rows.map((i) => `trial ${hist.number[i]}: ${hist.value[i]}`),
        marker: { color: "#ffffff", size: 5, line: { color: "#0f172a", width: 1 } },
        showlegend: false,
      },
    ],
    layout({
      height: 420,
      xaxis: axisLayout(nx, study.space[nx], ax, cx),
      yaxis: axisLayout(ny, study.space[ny], ay, cy),
    }),
    rows.length,
  );
}

// A qualitative palette (Tableau 10): neighbouring trials get clearly different colours.
const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

function curveStyle(c, best) {
  if (c.state === "running") return { width: 3, opacity: 1, dash: "solid" };
  if (best.has(c.number)) return { width: 3.5, opacity: 1, dash: "solid" };
  return { width: 1.5, opacity: c.state === "complete" ? 0.55 : 0.35, dash: c.state === "pruned" ? "dot" : "solid" };
}

// Learning curves: one colour per trial, with a legend; running trials and the study's best
// trials (`opts.best`, a Set of trial numbers) bold; pruned ones dotted. Hovering a curve
// highlights it and fades the others.
export async function curvesPlot(el, curves, metric, opts = {}) {
  if (curves.length === 0 && opts.empty) return sayInstead(el, opts.empty);
  const best = opts.best ?? new Set();
  const ordered = [...curves].sort((a, b) => Number(best.has(b.number)) - Number(best.has(a.number)) || a.number - b.number);
  const styles = ordered.map((c) => curveStyle(c, best));
  const traces = ordered.map((c, k) => {
    const tags = [best.has(c.number) ? "best" : null, c.state === "running" ? "running" : null, c.state === "pruned" ? "pruned" : null].filter(Boolean);
    const color = c.state === "running" ? COLORS.running : PALETTE[c.number % PALETTE.length];
    return {
      type: scatterType(c.steps.length * curves.length),
      mode: c.steps.length > 1 ? "lines" : "markers",
      name: `${best.has(c.number) ? "★ " : ""}trial ${c.number}${tags.length ? ` (${tags.join(", ")})` : ""}`,
      x: c.steps,
      y: c.values,
      meta: c.number,
      hovertemplate: `trial ${c.number}<br>step %{x}<br>${metric} %{y}<extra></extra>`,
      line: { width: styles[k].width, color, dash: styles[k].dash },
      marker: { color },
      opacity: styles[k].opacity,
    };
  });
  const points = curves.reduce((n, c) => n + c.steps.length, 0);
  await draw(
    el,
    traces,
    layout({
      xaxis: integerAxis("step", curves.flatMap((c) => c.steps)),
      yaxis: { title: { text: metric } },
      height: 460,
      legend: { orientation: "v", x: 1.02, y: 1, font: { size: 11 } },
      margin: { l: 60, r: 10, t: 20, b: 50 },
    }),
    points,
  );
  highlightOnHover(el, styles);
}

// Hover: the curve under the pointer bold and opaque, the others faded; restored on leave.
function highlightOnHover(el, styles) {
  if (el.dataset.hoverBound) {
    el.__curveStyles = styles;
    return;
  }
  el.dataset.hoverBound = "true";
  el.__curveStyles = styles;
  const Plotly = window.Plotly;
  el.on("plotly_hover", (event) => {
    const k = event.points[0].curveNumber;
    const n = el.data.length;
    Plotly.restyle(
      el,
      {
        opacity: Array.from({ length: n }, (_, i) => (i === k ? 1 : 0.12)),
        "line.width": Array.from({ length: n }, (_, i) => (i === k ? 4 : el.__curveStyles[i].width)),
      },
    );
    el.dataset.highlighted = String(el.data[k].meta);
  });
  el.on("plotly_unhover", () => {
    Plotly.restyle(el, {
      opacity: el.__curveStyles.map((s) => s.opacity),
      "line.width": el.__curveStyles.map((s) => s.width),
    });
    delete el.dataset.highlighted;
  });
}

export function trialCurvePlot(el, values, metric) {
  return draw(
    el,
    [
      {
        type: "scatter",
        mode: "lines+markers",
        x: values.map((v) => v.step),
        y: values.map((v) => v.value),
        line: { color: COLORS.complete },
      },
    ],
    layout({
      height: 300,
      xaxis: integerAxis("step", values.map((v) => v.step)),
      yaxis: { title: { text: metric } },
    }),
    values.length,
  );
}

function coord(axis, value) {
  if (!present(value)) return null; // a conditional parameter the trial did not use
  if (axis.kind === "categorical") return String(value);
  return value;
}

// Log-axis ticks over a GP view axis's grid (a few hundred points at most).
function gpLogTicks(axis) {
  return logAxisTicks(Math.min(...axis.values), Math.max(...axis.values));
}

const FEASIBLE_NAME = "probability feasible";
const FEASIBLE_COLOR = "#dc2626";

// The GP view along one parameter: mean with a +-2 std band, observations, pending points
// and the incumbent above; the acquisition below, with the modelled probability that a
// configuration is feasible (constraints, out-of-memory failures) on a 0-1 axis at its right
// when the study has a feasibility model (`curve.feasibility` is null otherwise).
export function gpCurvePlot(el, view, metric) {
  const { x, curve } = view;
  const xs = x.values.map((v) => coord(x, v));
  const obs = view.observed.filter((p) => p.value !== null);
  const pendingX = view.pending.map((p) => coord(x, p.params[x.name]));
  const lo = Math.min(...curve.acquisition);
  const traces = [
    {
      x: xs,
      y: curve.upper,
      mode: "lines",
      line: { width: 0 },
      hoverinfo: "skip",
      showlegend: false,
    },
    {
      x: xs,
      y: curve.lower,
      mode: "lines",
      line: { width: 0 },
      fill: "tonexty",
      fillcolor: "rgba(79,70,229,0.15)",
      name: "mean ± 2σ",
    },
    { x: xs, y: curve.mean, mode: "lines", name: "posterior mean", line: { color: "#4f46e5" } },
    {
      x: obs.map((p) => coord(x, p.params[x.name])),
      y: obs.map((p) => p.value),
      text: obs.map((p) => `trial ${p.number}`),
      mode: "markers",
      name: "observed",
      marker: { color: "#0f172a", size: 6, opacity: 0.7 },
    },
    {
      x: xs,
      y: curve.acquisition,
      mode: "lines",
      name: `acquisition (${view.acquisition})`,
      line: { color: "#059669" },
      fill: "tozeroy",
      fillcolor: "rgba(5,150,105,0.12)",
      xaxis: "x",
      yaxis: "y2",
    },
    {
      x: pendingX,
      y: pendingX.map(() => lo),
      mode: "markers",
      name: "pending",
      marker: { symbol: "triangle-up", size: 12, color: COLORS.pruned },
      yaxis: "y2",
    },
  ];
  if (view.incumbent) {
    traces.push({
      x: [coord(x, view.incumbent.params[x.name])],
      y: [view.incumbent.value],
      mode: "markers",
      name: "incumbent",
      marker: { symbol: "star", size: 16, color: COLORS.failed },
    });
  }
  const feasible = curve.feasibility;
  if (feasible) {
    traces.push({
      x: xs,
      y: feasible,
      mode: "lines",
      name: FEASIBLE_NAME,
      line: { color: FEASIBLE_COLOR, dash: "dash" },
      xaxis: "x",
      yaxis: "y3",
    });
  }
  const xaxis = { title: { text: x.name }, type: x.kind === "categorical" ? "category" : undefined };
  if (x.log) Object.assign(xaxis, { type: "log", ...gpLogTicks(x) });
  const axes = feasible
    ? {
        yaxis3: {
          title: { text: "P(feasible)", font: { color: FEASIBLE_COLOR } },
          overlaying: "y2",
          side: "right",
          range: [0, 1.05],
          tickvals: [0, 0.5, 1],
          showgrid: false,
          tickfont: { color: FEASIBLE_COLOR },
        },
        margin: { l: 60, r: 60, t: 30, b: 50 },
      }
    : {};
  return draw(
    el,
    traces,
    layout({
      height: 520,
      grid: { rows: 2, columns: 1, pattern: "coupled", roworder: "top to bottom" },
      xaxis,
      yaxis: { title: { text: metric }, domain: [0.38, 1] },
      yaxis2: { title: { text: view.acquisition }, domain: [0, 0.28], exponentformat: "e" },
      ...axes,
    }),
    xs.length,
  );
}

// The probability feasible over two parameters as labelled contour lines (0.1 to 0.9) over
// the posterior mean: the 0.5 line is where the strategy's feasibility weight starts to bar
// suggestions (service/optimizer/feasibility.py).
function feasibleContours(view, xs, ys) {
  return {
    type: "contour",
    x: xs,
    y: ys,
    z: view.surface.feasibility,
    name: FEASIBLE_NAME,
    showlegend: true,
    showscale: false,
    colorscale: [
      [0, FEASIBLE_COLOR],
      [1, FEASIBLE_COLOR],
    ],
    contours: { coloring: "lines", showlabels: true, start: 0.1, end: 0.9, size: 0.2 },
    line: { width: 1.5, dash: "dash" },
    hovertemplate: "P(feasible) %{z:.2f}<extra></extra>",
    xaxis: "x",
    yaxis: "y",
  };
}

// The GP view over two parameters: mean and acquisition contours side by side, and the
// probability feasible as contour lines over the mean when the study has a feasibility model.
export function gpSurfacePlot(el, view) {
  const { x, y, surface } = view;
  const xs = x.values.map((v) => coord(x, v));
  const ys = y.values.map((v) => coord(y, v));
  const obs = view.observed;
  const marks = (xaxis, yaxis) => [
    {
      x: obs.map((p) => coord(x, p.params[x.name])),
      y: obs.map((p) => coord(y, p.params[y.name])),
      mode: "markers",
      name: "observed",
      showlegend: xaxis === "x",
      marker: { color: "#ffffff", size: 5, line: { color: "#0f172a", width: 1 } },
      xaxis,
      yaxis,
    },
    {
      x: view.pending.map((p) => coord(x, p.params[x.name])),
      y: view.pending.map((p) => coord(y, p.params[y.name])),
      mode: "markers",
      name: "pending",
      showlegend: xaxis === "x",
      marker: { symbol: "triangle-up", size: 11, color: COLORS.pruned },
      xaxis,
      yaxis,
    },
    ...(view.incumbent
      ? [
          {
            x: [coord(x, view.incumbent.params[x.name])],
            y: [coord(y, view.incumbent.params[y.name])],
            mode: "markers",
            name: "incumbent",
            showlegend: xaxis === "x",
            marker: { symbol: "star", size: 15, color: COLORS.failed },
            xaxis,
            yaxis,
          },
        ]
      : []),
  ];
  const axis = (a) => ({
    title: { text: a.name },
    type: a.kind === "categorical" ? "category" : a.log ? "log" : undefined,
    ...(a.log ? gpLogTicks(a) : {}),
  });
  return draw(
    el,
    [
      {
        type: "contour",
        x: xs,
        y: ys,
        z: surface.mean,
        colorscale: "Viridis",
        reversescale: view.direction === "minimize",
        colorbar: { title: { text: "mean" }, x: 0.45, len: 0.9 },
        name: "mean",
      },
      ...(view.surface.feasibility ? [feasibleContours(view, xs, ys)] : []),
      ...marks("x", "y"),
      {
        type: "contour",
        x: xs,
        y: ys,
        z: surface.acquisition,
        colorscale: "Greens",
        reversescale: true,
        colorbar: { title: { text: view.acquisition }, x: 1.0, len: 0.9, exponentformat: "e" },
        xaxis: "x2",
        yaxis: "y2",
        name: "acquisition",
      },
      ...marks("x2", "y2"),
    ],
    layout({
      height: 460,
      grid: { rows: 1, columns: 2, pattern: "independent", xgap: 0.18 },
      xaxis: { ...axis(x), domain: [0, 0.4] },
      yaxis: axis(y),
      xaxis2: { ...axis(x), domain: [0.56, 0.96] },
      yaxis2: axis(y),
      annotations: [
        { text: "posterior mean", showarrow: false, x: 0.2, y: 1.06, xref: "paper", yref: "paper" },
        {
          text: `acquisition (${view.acquisition})`,
          showarrow: false,
          x: 0.76,
          y: 1.06,
          xref: "paper",
          yref: "paper",
        },
      ],
    }),
    xs.length * ys.length,
  );
}

// What the GP predicted when it suggested each trial (mean +- 2 std) next to what it got.
export function predictionPlot(el, hist, metric) {
  const rows = [];
  hist.number.forEach((n, i) => {
    if (hist.predicted_mean[i] !== null) rows.push(i);
  });
  const done = rows.filter((i) => hist.value[i] !== null);
  return draw(
    el,
    [
      {
        type: scatterType(rows.length),
        mode: "markers",
        name: "predicted (±2σ)",
        x: rows.map((i) => hist.number[i]),
        y: rows.map((i) => hist.predicted_mean[i]),
        error_y: {
          type: "data",
          array: rows.map((i) => 2 * (hist.predicted_std[i] ?? 0)),
          color: "rgba(79,70,229,0.45)",
        },
        marker: { color: "rgba(79,70,229,0.8)", symbol: "line-ew-open", size: 10 },
      },
      {
        type: scatterType(done.length),
        mode: "markers",
        name: "got",
        x: done.map((i) => hist.number[i]),
        y: done.map((i) => hist.value[i]),
        marker: { color: COLORS.best, size: 6 },
      },
    ],
    layout({
      height: 320,
      xaxis: integerAxis("trial", rows.map((i) => hist.number[i])),
      yaxis: { title: { text: metric } },
    }),
    rows.length,
  );
}
