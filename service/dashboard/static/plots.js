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
  await Plotly.react(el, traces, lay, CONFIG);
  el.dataset.points = String(points);
}

function scatterType(n) {
  return n > GL_ABOVE ? "scattergl" : "scatter";
}

function isLog(space, name) {
  return Boolean(space?.[name]?.log);
}

// Optimization history: every trial with a value, by state, and the best-so-far line.
export function historyPlot(el, hist, metric) {
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
  const title = hist.downsampled
    ? `${hist.number.length} of ${hist.count} trials shown (every improvement kept)`
    : "";
  return draw(
    el,
    traces,
    layout({
      title: { text: title, font: { size: 12 }, x: 1, xanchor: "right" },
      xaxis: { title: { text: "trial" }, zeroline: false },
      yaxis: { title: { text: metric }, zeroline: false },
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
export function parallelPlot(el, hist, study) {
  const rows = finite(hist);
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
      // Numeric: an inactive value sits one tenth of the range below it, labelled so.
      const lo = spec.log ? Math.log10(spec.low) : spec.low;
      const hi = spec.log ? Math.log10(spec.high) : spec.high;
      const below = lo - 0.1 * (hi - lo || 1);
      const values = raw.map((v) => (present(v) ? (spec.log ? Math.log10(v) : v) : below));
      const dim = { label: spec.log ? `log10 ${name}` : name, values, range: [lo, hi] };
      if (raw.some((v) => !present(v))) {
        const ticks = Array.from({ length: 5 }, (_, k) => lo + (k * (hi - lo)) / 4);
        Object.assign(dim, {
          range: [below, hi],
          tickvals: [below, ...ticks],
          ticktext: ["inactive", ...ticks.map((t) => Number(t.toPrecision(3)).toString())],
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
export function slicePlot(el, hist, study, name) {
  const rows = finite(hist).filter((i) => present(hist.params[name][i]));
  const spec = study.space[name];
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
          color: rows.map((i) => hist.number[i]),
          colorscale: "Blues",
          opacity: 0.8,
        },
      },
    ],
    layout({
      margin: { l: 55, r: 10, t: 10, b: 45 },
      height: 260,
      xaxis: { title: { text: name }, type: spec.log ? "log" : undefined },
      yaxis: { title: { text: study.metric } },
    }),
    rows.length,
  );
}

function axisCoords(spec, values) {
  if (spec.type === "categorical") {
    const labels = spec.choices.map(String);
    return { coords: values.map((v) => labels.indexOf(String(v))), labels, log: false };
  }
  const log = Boolean(spec.log);
  return { coords: values.map((v) => (log ? Math.log10(v) : v)), labels: null, log };
}

function gridPoints(spec) {
  if (spec.type === "categorical") return spec.choices.map((_, k) => k);
  const lo = spec.log ? Math.log10(spec.low) : spec.low;
  const hi = spec.log ? Math.log10(spec.high) : spec.high;
  const n = spec.type === "int" ? Math.min(spec.high - spec.low + 1, 21) : 21;
  return Array.from({ length: n }, (_, k) => lo + (k * (hi - lo)) / (n - 1));
}

function nearest(centers, v) {
  let best = 0;
  for (let k = 1; k < centers.length; k++) {
    if (Math.abs(centers[k] - v) < Math.abs(centers[best] - v)) best = k;
  }
  return best;
}

function axisLayout(name, axis, centers) {
  const out = { title: { text: axis.log ? `log10 ${name}` : name } };
  if (axis.labels) Object.assign(out, { tickvals: centers, ticktext: axis.labels });
  return out;
}

// Contour of the best value seen in each cell of a grid over two parameters, with the trials.
export function contourPlot(el, hist, study, nx, ny) {
  const rows = finite(hist).filter(
    (i) => present(hist.params[nx][i]) && present(hist.params[ny][i]),
  );
  const ax = axisCoords(study.space[nx], rows.map((i) => hist.params[nx][i]));
  const ay = axisCoords(study.space[ny], rows.map((i) => hist.params[ny][i]));
  const cx = gridPoints(study.space[nx]);
  const cy = gridPoints(study.space[ny]);
  const z = cy.map(() => cx.map(() => null));
  const better = study.direction === "minimize" ? (a, b) => a < b : (a, b) => a > b;
  rows.forEach((i, k) => {
    const gx = nearest(cx, ax.coords[k]);
    const gy = nearest(cy, ay.coords[k]);
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
      xaxis: axisLayout(nx, ax, cx),
      yaxis: axisLayout(ny, ay, cy),
    }),
    rows.length,
  );
}

// Learning curves: finished trials thin and pale, running ones bold.
export function curvesPlot(el, curves, metric) {
  const traces = curves.map((c) => {
    const running = c.state === "running";
    return {
      type: scatterType(c.steps.length * curves.length),
      mode: c.steps.length > 1 ? "lines" : "markers",
      name: `trial ${c.number}${running ? " (running)" : ""}`,
      x: c.steps,
      y: c.values,
      showlegend: running,
      line: { width: running ? 3 : 1, color: running ? COLORS.running : COLORS[c.state] },
      opacity: running ? 1 : 0.35,
    };
  });
  const points = curves.reduce((n, c) => n + c.steps.length, 0);
  return draw(
    el,
    traces,
    layout({
      xaxis: { title: { text: "step" } },
      yaxis: { title: { text: metric } },
      height: 420,
    }),
    points,
  );
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
      xaxis: { title: { text: "step" } },
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

// The GP view along one parameter: mean with a +-2 std band, observations, pending points
// and the incumbent above; the acquisition below.
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
  const xaxis = { title: { text: x.name }, type: x.kind === "categorical" ? "category" : undefined };
  if (x.log) xaxis.type = "log";
  return draw(
    el,
    traces,
    layout({
      height: 520,
      grid: { rows: 2, columns: 1, pattern: "coupled", roworder: "top to bottom" },
      xaxis,
      yaxis: { title: { text: metric }, domain: [0.38, 1] },
      yaxis2: { title: { text: view.acquisition }, domain: [0, 0.28], exponentformat: "e" },
    }),
    xs.length,
  );
}

// The GP view over two parameters: mean and acquisition contours side by side.
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
      xaxis: { title: { text: "trial" } },
      yaxis: { title: { text: metric } },
    }),
    rows.length,
  );
}
