// The study's trials table, paginated, sorted and filtered by the server
// (GET /studies/{id}/trials with state, where, offset, limit, order, descending): by state,
// by value range and by any parameter (a range, or a choice); sorted by any column or
// parameter; the failed trials' errors and the pruned trials' step as columns; the same
// selection downloadable as CSV (GET /studies/{id}/trials.csv).

import { blobUrl, get } from "./api.js";
import { badge, duration, errorText, fmt, h, notice, replace, throttle } from "./ui.js";

const PAGE = 50;
const STATES = ["queued", "running", "complete", "pruned", "failed"];
const ORDERS = {
  number: "number",
  value: "value",
  state: "state",
  started_at: "started",
  finished_at: "finished",
  updated_at: "last change",
};

function suggestion(trial) {
  const s = trial.suggestion ?? {};
  const source = s.source ?? trial.source;
  if (s.source !== "gp") return h("span", { class: "muted" }, source);
  return h(
    "span",
    { title: "acquisition value and the GP's prediction when this trial was suggested" },
    `${s.acquisition ?? "gp"} ${fmt(s.acquisition_value, 3)}`,
    h("div", { class: "muted small" }, `μ ${fmt(s.mean, 3)} ± ${fmt(s.std, 2)}`),
  );
}

function query(view) {
  return { state: [...view.states], where: view.where, order: view.order, descending: view.descending };
}

// "params.lr>=0.001" -> "lr ≥ 0.001", "value<=2" -> "val_loss ≤ 2"
function conditionLabel(where, metric) {
  const m = /^(?:value|params\.(.+?))(>=|<=|=)(.*)$/.exec(where);
  if (!m) return where;
  const op = { ">=": "≥", "<=": "≤", "=": "=" }[m[2]];
  return `${m[1] ?? metric} ${op} ${m[3]}`;
}

// The filter row: a target (the value or a parameter), then min and max (numbers) or a
// choice (categorical); "Add" appends conditions to view.where.
function filterBar(study, names, view, refresh) {
  const target = h(
    "select",
    { id: "filter-target", "aria-label": "filter on" },
    h("option", { value: "value" }, study.metric),
    names.map((n) => h("option", { value: `params.${n}` }, n)),
  );
  const low = h("input", { id: "filter-min", type: "number", step: "any", placeholder: "min" });
  const high = h("input", { id: "filter-max", type: "number", step: "any", placeholder: "max" });
  const choice = h("select", { id: "filter-choice", "aria-label": "choice" });
  const add = h("button", { class: "btn btn-small", id: "filter-add" }, "Add filter");
  const active = h("div", { class: "conditions", id: "filter-conditions" });
  const spec = () => (target.value === "value" ? null : study.space[target.value.slice("params.".length)]);
  const sync = () => {
    const s = spec();
    const categorical = s?.type === "categorical";
    low.hidden = high.hidden = categorical;
    choice.hidden = !categorical;
    if (categorical) replace(choice, s.choices.map((c) => h("option", { value: typeof c === "string" ? c : JSON.stringify(c) }, String(c))));
  };
  target.addEventListener("change", sync);
  add.addEventListener("click", () => {
    const t = target.value;
    const added = [];
    if (spec()?.type === "categorical") added.push(`${t}=${choice.value}`);
    else {
      if (low.value !== "") added.push(`${t}>=${low.value}`);
      if (high.value !== "") added.push(`${t}<=${high.value}`);
    }
    if (!added.length) return;
    view.where = [...view.where.filter((w) => !added.includes(w)), ...added];
    low.value = high.value = "";
    view.offset = 0;
    refresh();
  });
  sync();
  return {
    el: h("div", { class: "param-filter" }, h("span", { class: "muted small" }, "Filter"), target, low, high, choice, add, active),
    render() {
      replace(
        active,
        view.where.map((w) =>
          h(
            "span",
            { class: "condition", dataset: { where: w } },
            conditionLabel(w, study.metric),
            h(
              "button",
              {
                title: "remove this filter",
                "aria-label": `remove filter ${w}`,
                onclick: () => {
                  view.where = view.where.filter((x) => x !== w);
                  view.offset = 0;
                  refresh();
                },
              },
              "×",
            ),
          ),
        ),
      );
    },
  };
}

// Downloads the selection as CSV (fetched with the bearer header, saved from an object URL).
async function downloadCsv(study, view, message) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query(view))) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, item);
  }
  try {
    const url = await blobUrl(`/api/v1/studies/${study.id}/trials.csv?${params}`);
    const link = h("a", { href: url, download: `${study.name}-trials.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    replace(message);
  } catch (error) {
    replace(message, notice(`CSV download failed: ${errorText(error)}`, "error"));
  }
}

export function trialsTable(study) {
  const names = Object.keys(study.space).filter((n) => study.space[n].type !== "fixed");
  const view = { offset: 0, order: "number", descending: true, states: new Set(), where: [] };
  const filters = h("div", { class: "filters", id: "state-filters" });
  const sortSelect = h(
    "select",
    { id: "trial-order", "aria-label": "sort trials by" },
    Object.entries(ORDERS).map(([key, label]) => h("option", { value: key }, label)),
    names.map((n) => h("option", { value: `params.${n}` }, n)),
  );
  const dirButton = h("button", { class: "btn btn-small", id: "trial-direction" });
  const body = h("div", { class: "table-wrap" });
  const pager = h("div", { class: "pager" });
  const message = h("div");
  const csvButton = h("button", { class: "btn btn-small", id: "trials-csv", title: "every trial of this selection, parameters as columns" }, "Download CSV");
  csvButton.addEventListener("click", () => downloadCsv(study, view, message));
  const filterRow = filterBar(study, names, view, () => refresh());
  const el = h(
    "div",
    { id: "trials" },
    h(
      "div",
      { class: "toolbar" },
      filters,
      h("label", { class: "muted" }, "Sort by ", sortSelect),
      dirButton,
      csvButton,
    ),
    filterRow.el,
    message,
    body,
    pager,
  );

  function header(label, order) {
    if (!order) return h("th", {}, label);
    const active = view.order === order;
    return h(
      "th",
      {
        class: `sortable${active ? " sorted" : ""}`,
        dataset: { order },
        onclick: () => {
          view.descending = active ? !view.descending : !(order === "value" || order.startsWith("params."));
          view.order = order;
          view.offset = 0;
          refresh();
        },
      },
      label,
      active ? (view.descending ? " ▼" : " ▲") : "",
    );
  }

  function row(t) {
    return h(
      "tr",
      { dataset: { trial: t.id, number: t.number, state: t.state } },
      h("td", { class: "num" }, h("a", { href: `/trials/${t.id}` }, `#${t.number}`)),
      h("td", {}, badge(t.state)),
      h("td", { class: "num strong" }, fmt(t.value)),
      names.map((n) => h("td", { class: "num" }, fmt(t.params[n]))),
      h("td", { class: "num", dataset: { col: "pruned-step" } }, t.state === "pruned" ? fmt(t.step) : ""),
      h("td", { class: "error-cell", dataset: { col: "error" }, title: t.error ?? "" }, t.error ?? ""),
      h("td", { class: "num" }, duration(t.duration_seconds)),
      h("td", { class: "mono small" }, t.worker_id ?? (t.state === "running" ? "ask/tell" : "—")),
      h("td", {}, suggestion(t)),
    );
  }

  function renderFilters(counts) {
    replace(
      filters,
      STATES.map((s) =>
        h(
          "button",
          {
            class: `chip state-${s}${view.states.has(s) ? " on" : ""}`,
            dataset: { state: s },
            onclick: () => {
              if (view.states.has(s)) view.states.delete(s);
              else view.states.add(s);
              view.offset = 0;
              refresh();
            },
          },
          `${s} ${counts?.[s] ?? 0}`,
        ),
      ),
    );
  }

  async function refresh() {
    sortSelect.value = view.order;
    dirButton.textContent = view.descending ? "▼ descending" : "▲ ascending";
    let page;
    try {
      page = await get(`/studies/${study.id}/trials`, { ...query(view), offset: view.offset, limit: PAGE });
    } catch (error) {
      replace(body, notice(`Could not load trials: ${errorText(error)}`, "error"));
      return;
    }
    renderFilters(study.counts);
    filterRow.render();
    replace(
      body,
      h(
        "table",
        { class: "table", id: "trials-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            header("#", "number"),
            header("state", "state"),
            header(study.metric, "value"),
            names.map((n) => header(n, `params.${n}`)),
            header("pruned at step"),
            header("error"),
            header("duration"),
            header("worker"),
            header("suggested by"),
          ),
        ),
        h("tbody", {}, page.data.map(row)),
      ),
      page.count === 0 && (view.where.length || view.states.size) ? h("p", { class: "empty", id: "trials-none" }, "No trial matches these filters.") : null,
    );
    const pages = Math.max(1, Math.ceil(page.count / PAGE));
    const current = Math.floor(view.offset / PAGE) + 1;
    const go = (p) => () => {
      view.offset = (Math.min(Math.max(p, 1), pages) - 1) * PAGE;
      refresh();
    };
    replace(
      pager,
      h("button", { class: "btn btn-small", disabled: current === 1, onclick: go(1) }, "«"),
      h("button", { class: "btn btn-small", disabled: current === 1, onclick: go(current - 1) }, "‹"),
      h("span", { class: "muted", id: "trials-page" }, `page ${current} of ${pages} · ${page.count} trials`),
      h("button", { class: "btn btn-small", disabled: current === pages, onclick: go(current + 1) }, "›"),
      h("button", { class: "btn btn-small", disabled: current === pages, onclick: go(pages) }, "»"),
    );
  }

  sortSelect.addEventListener("change", () => {
    view.order = sortSelect.value;
    view.offset = 0;
    refresh();
  });
  dirButton.addEventListener("click", () => {
    view.descending = !view.descending;
    refresh();
  });

  return {
    el,
    refresh,
    refreshSoon: throttle(refresh, 1000),
    setStudy(next) {
      study = next;
      renderFilters(study.counts);
    },
  };
}
