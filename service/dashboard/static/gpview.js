// The "GP model" tab: the study's GP rebuilt by the server (GET /studies/{id}/model) along one
// parameter or over two, and what the GP predicted for each suggested trial against the value
// it then got (from the history columns).

import { get } from "./api.js";
import { gpCurvePlot, gpSurfacePlot, predictionPlot } from "./plots.js";
import { errorText, fmt, h, notice, replace, table } from "./ui.js";

const RECENT = 15;

function option(value, label, selected) {
  return h("option", { value, selected: value === selected }, label);
}

function predictionRows(hist) {
  const rows = [];
  for (let i = hist.number.length - 1; i >= 0 && rows.length < RECENT; i--) {
    if (hist.predicted_mean[i] === null) continue;
    const mean = hist.predicted_mean[i];
    const std = hist.predicted_std[i];
    const value = hist.value[i];
    const z = value !== null && std ? (value - mean) / std : null;
    rows.push(
      h(
        "tr",
        {},
        h("td", { class: "num" }, h("a", { href: `/trials/${hist.trial_id[i]}` }, `#${hist.number[i]}`)),
        h("td", {}, hist.acquisition[i] ?? "—"),
        h("td", { class: "num" }, fmt(hist.acquisition_value[i], 3)),
        h("td", { class: "num" }, `${fmt(mean, 4)} ± ${fmt(std, 3)}`),
        h("td", { class: "num strong" }, value === null ? hist.state[i] : fmt(value, 4)),
        h("td", { class: "num" }, z === null ? "—" : fmt(z, 2)),
      ),
    );
  }
  return rows;
}

// The sentence that names the feasibility trace, when the view has one.
function feasibilityNote(view) {
  const p = view.curve?.feasibility ?? view.surface?.feasibility?.flat();
  if (!p) return "";
  return `; probability feasible (constraints, out-of-memory failures) from ${fmt(Math.min(...p), 2)} to ${fmt(Math.max(...p), 2)} in this view`;
}

export function gpView(ctx) {
  const names = Object.keys(ctx.study.space).filter((n) => ctx.study.space[n].type !== "fixed");
  const param = h("select", { id: "gp-param" }, names.map((n) => option(n, n, names[0])));
  const param2 = h(
    "select",
    { id: "gp-param2" },
    option("", "— (one parameter)", ""),
    names.map((n) => option(n, n, "")),
  );
  const acquisition = h(
    "select",
    { id: "gp-acquisition" },
    option("", "the study's", ""),
    option("ei", "EI", ""),
    option("pi", "PI", ""),
    option("ucb", "UCB", ""),
  );
  const info = h("div", { id: "gp-info" });
  const plot = h("div", { class: "plot", id: "gp-plot" });
  const predictions = h("div", { class: "plot", id: "gp-predictions" });
  const recent = h("div", { class: "table-wrap" });
  const el = h(
    "div",
    { id: "gp-view" },
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Gaussian-process model"),
      h(
        "p",
        { class: "muted small" },
        "Rebuilt from the stored trials as the scheduler would: other parameters held at the incumbent; ",
        "the band is the posterior mean ± 2σ, the acquisition accounts for pending trials ",
        "and, in a study with constraints or infeasible failures, is weighted by the probability feasible.",
      ),
      h(
        "div",
        { class: "toolbar" },
        h("label", {}, "parameter ", param),
        h("label", {}, "second parameter ", param2),
        h("label", {}, "acquisition ", acquisition),
      ),
      info,
      plot,
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Predicted at suggestion vs. obtained"),
      predictions,
      recent,
    ),
  );

  async function drawModel() {
    plot.hidden = false;
    try {
      const view = await get(`/studies/${ctx.study.id}/model`, {
        param: param.value,
        param2: param2.value || null,
        acquisition: acquisition.value || null,
      });
      const ls = Object.entries(view.lengthscales)
        .map(([n, l]) => `${n} ${fmt(l, 2)}`)
        .join(", ");
      replace(
        info,
        h(
          "p",
          { class: "muted small" },
          `${view.n_observations} observations, ${view.pending.length} pending, `,
          `acquisition ${view.acquisition.toUpperCase()}, incumbent `,
          view.incumbent ? `#${view.incumbent.number} = ${fmt(view.incumbent.value)}` : "—",
          `; lengthscales (unit cube): ${ls}`,
          feasibilityNote(view),
        ),
        view.warnings.map((w) => notice(w, "warn")),
      );
      if (view.surface) await gpSurfacePlot(plot, view);
      else await gpCurvePlot(plot, view, ctx.study.metric);
    } catch (error) {
      plot.hidden = true;
      replace(info, notice(errorText(error)));
    }
  }

  for (const control of [param, param2, acquisition]) control.addEventListener("change", drawModel);

  return {
    el,
    async draw({ full }) {
      const rows = predictionRows(ctx.hist);
      predictions.hidden = rows.length === 0;
      replace(
        recent,
        rows.length
          ? table(["trial", "acquisition", "acq. value", "predicted μ ± σ", "got", "z"], rows, {
              id: "gp-trials",
            })
          : notice("No trial was suggested by the GP yet (the first ones come from a Sobol design)."),
      );
      const jobs = [rows.length ? predictionPlot(predictions, ctx.hist, ctx.study.metric) : null];
      if (full) jobs.push(drawModel());
      await Promise.all(jobs);
    },
  };
}
