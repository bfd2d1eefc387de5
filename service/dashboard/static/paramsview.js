// The "Parameters" tab: importance, parallel coordinates, slices and a two-parameter contour,
// all drawn from the history columns (GET /studies/{id}/history) except importance.

import { get } from "./api.js";
import { contourPlot, importancePlot, nothingToPlot, parallelPlot, sayInstead, slicePlot } from "./plots.js";
import { errorText, h, notice, replace } from "./ui.js";

function select(id, names, value) {
  return h(
    "select",
    { id },
    names.map((n) => h("option", { value: n, selected: n === value }, n)),
  );
}

export function paramsView(ctx) {
  const names = Object.keys(ctx.study.space).filter((n) => ctx.study.space[n].type !== "fixed");
  const importance = h("div", { class: "plot", id: "importance-plot" });
  const importanceNote = h("div");
  const parallel = h("div", { class: "plot", id: "parallel-plot" });
  const slices = names.map((n) => h("div", { class: "plot slice", dataset: { param: n } }));
  const slicesEl = h("div", { class: "slices", id: "slices" }, slices);
  const slicesNote = h("div", { id: "slices-note" });
  const contour = h("div", { class: "plot", id: "contour-plot" });
  const cx = select("contour-x", names, names[0]);
  const cy = select("contour-y", names, names[1] ?? names[0]);
  const el = h(
    "div",
    { id: "params-view" },
    h(
      "div",
      { class: "grid-2" },
      h("section", { class: "card" }, h("h2", {}, "Parameter importance"), importanceNote, importance),
      h("section", { class: "card" }, h("h2", {}, "Parallel coordinates"), parallel),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Slices"),
      h("p", { class: "muted small" }, "The value against each parameter; colour: trial number (later trials darker)."),
      slicesNote,
      slicesEl,
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Contour"),
      h("div", { class: "toolbar" }, h("label", {}, "x ", cx), h("label", {}, "y ", cy)),
      contour,
    ),
  );

  const hasResults = () => ctx.hist.state.some((st, i) => (st === "complete" || st === "pruned") && ctx.hist.value[i] !== null);
  const empty = () => nothingToPlot(ctx.study.counts);

  function drawContour() {
    if (!hasResults()) {
      sayInstead(contour, empty());
      return;
    }
    if (names.length < 2) {
      replace(contour, notice("A contour needs two searchable parameters."));
      return;
    }
    if (cx.value === cy.value) {
      replace(contour, notice("Choose two different parameters."));
      return;
    }
    contourPlot(contour, ctx.hist, ctx.study, cx.value, cy.value);
  }
  cx.addEventListener("change", drawContour);
  cy.addEventListener("change", drawContour);

  async function loadImportance() {
    if (!hasResults()) {
      importance.hidden = true;
      replace(importanceNote, h("p", { class: "plot-empty" }, empty()));
      return;
    }
    try {
      const imp = await get(`/studies/${ctx.study.id}/importance`);
      replace(importanceNote, h("p", { class: "muted small" }, `${imp.method}; ${imp.n_trials} trials`));
      importance.hidden = false;
      await importancePlot(importance, imp);
    } catch (error) {
      importance.hidden = true;
      replace(importanceNote, notice(errorText(error)));
    }
  }

  return {
    el,
    async draw({ full }) {
      if (full || (importance.hidden && hasResults())) loadImportance();
      const results = hasResults();
      slicesEl.hidden = !results;
      replace(slicesNote, results ? [] : h("p", { class: "plot-empty" }, empty()));
      await Promise.all([
        parallelPlot(parallel, ctx.hist, ctx.study, { empty: empty() }),
        ...(results ? slices.map((s) => slicePlot(s, ctx.hist, ctx.study, s.dataset.param)) : []),
      ]);
      drawContour();
    },
  };
}
