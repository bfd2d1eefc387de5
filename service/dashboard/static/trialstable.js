// The study's trials table, paginated, sorted and filtered by the server
// (GET /studies/{id}/trials with state, offset, limit, order, descending).

import { get } from "./api.js";
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

export function trialsTable(study) {
  const names = Object.keys(study.space).filter((n) => study.space[n].type !== "fixed");
  const view = { offset: 0, order: "number", descending: true, states: new Set() };
  const filters = h("div", { class: "filters", id: "state-filters" });
  const sortSelect = h(
    "select",
    { id: "trial-order", "aria-label": "sort trials by" },
    Object.entries(ORDERS).map(([key, label]) => h("option", { value: key }, label)),
  );
  const dirButton = h("button", { class: "btn btn-small", id: "trial-direction" });
  const body = h("div", { class: "table-wrap" });
  const pager = h("div", { class: "pager" });
  const el = h(
    "div",
    { id: "trials" },
    h(
      "div",
      { class: "toolbar" },
      filters,
      h("label", { class: "muted" }, "Sort by ", sortSelect),
      dirButton,
    ),
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
          view.descending = active ? !view.descending : order !== "value";
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
      page = await get(`/studies/${study.id}/trials`, {
        state: [...view.states],
        offset: view.offset,
        limit: PAGE,
        order: view.order,
        descending: view.descending,
      });
    } catch (error) {
      replace(body, notice(`Could not load trials: ${errorText(error)}`, "error"));
      return;
    }
    renderFilters(study.counts);
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
            names.map((n) => header(n)),
            header("duration"),
            header("worker"),
            header("suggested by"),
          ),
        ),
        h("tbody", {}, page.data.map(row)),
      ),
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
