// The studies page: every study with its progress, best value and pace; pause, resume, stop.
// Refreshes every REFRESH_MS (the list has no event stream of its own).

import { get, post } from "./api.js";
import { badge, errorText, finishedCount, fmt, h, notice, progress, replace, table } from "./ui.js";

const REFRESH_MS = 3000;
const PAGE = 100;

// A study that ended because its trials failed (all of them, or too many in a row) is shown
// as failed with its reason, not as a study that finished its budget.
export function endedByFailures(study) {
  return study.stop_kind === "all_failed" || study.stop_kind === "failures";
}

export function perHour(study) {
  const end = study.finished_at ? Date.parse(study.finished_at) : Date.now();
  const hours = (end - Date.parse(study.created_at)) / 3.6e6;
  return hours > 0 ? finishedCount(study) / hours : 0;
}

export function studyActions(study, refresh, message) {
  const act = (verb, label, kind = "") =>
    h(
      "button",
      {
        class: `btn btn-small ${kind}`,
        dataset: { action: verb, study: study.id },
        onclick: async () => {
          try {
            await post(`/studies/${study.id}/${verb}`);
          } catch (error) {
            replace(message, notice(`${label} failed: ${errorText(error)}`, "error"));
          }
          refresh();
        },
      },
      label,
    );
  const out = [];
  if (study.state === "running") out.push(act("pause", "Pause"));
  if (study.state === "paused") out.push(act("resume", "Resume"));
  if (study.state === "running" || study.state === "paused") {
    out.push(act("stop", "Stop", "btn-danger"));
  }
  return h("div", { class: "actions" }, out);
}

function row(study, refresh, message) {
  const best = study.best
    ? h("a", { href: `/trials/${study.best.trial_id}` }, fmt(study.best.value))
    : "—";
  const failed = endedByFailures(study);
  return h(
    "tr",
    { dataset: { study: study.id } },
    h("td", {}, h("a", { href: `/studies/${study.id}`, class: "strong" }, study.name)),
    h(
      "td",
      {},
      failed ? badge("failed") : badge(study.state),
      failed
        ? h("div", { class: "failing small stop-reason", title: study.stop_reason ?? "" },
            study.stop_reason ?? "its trials failed")
        : null,
      study.suggest_error
        ? h("div", { class: "failing small", title: study.suggest_error }, "suggestions failing")
        : null,
    ),
    h("td", {}, study.objective, h("div", { class: "muted small" }, study.strategy.name)),
    h(
      "td",
      { class: failed ? "wide progress-failed" : "wide" },
      progress(finishedCount(study), study.budget.max_trials),
    ),
    h("td", { class: "num" }, best, h("div", { class: "muted small" }, study.direction)),
    h("td", { class: "num" }, failed ? "—" : fmt(perHour(study), 3)),
    h("td", { class: "num" }, study.counts.running ?? 0),
    h("td", {}, studyActions(study, refresh, message)),
  );
}

export async function render(main) {
  const message = h("div", { id: "message" });
  const body = h("div", { id: "studies" });
  const pager = h("div", { class: "pager" });
  let offset = 0;
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Studies"),
      h("a", { class: "btn btn-primary", href: "/new" }, "New study"),
    ),
    message,
    h("div", { class: "card" }, body, pager),
  );

  async function refresh() {
    let page;
    try {
      page = await get("/studies", { offset, limit: PAGE });
    } catch (error) {
      replace(message, notice(`Could not load studies: ${errorText(error)}`, "error"));
      return;
    }
    if (!page.data.length) {
      replace(body, h("p", { class: "empty" }, "No studies yet. ", h("a", { href: "/new" }, "Create one.")));
    } else {
      replace(
        body,
        table(
          ["Study", "State", "Objective", "Progress", "Best", "Trials / h", "Running", ""],
          page.data.map((s) => row(s, refresh, message)),
          { id: "studies-table" },
        ),
      );
    }
    const go = (delta) => () => {
      offset = Math.max(0, offset + delta);
      refresh();
    };
    replace(
      pager,
      page.count > PAGE
        ? [
            h("button", { class: "btn btn-small", disabled: offset === 0, onclick: go(-PAGE) }, "‹ Newer"),
            h("span", { class: "muted" }, `${offset + 1}–${offset + page.data.length} of ${page.count}`),
            h("button", { class: "btn btn-small", disabled: offset + PAGE >= page.count, onclick: go(PAGE) }, "Older ›"),
          ]
        : [],
    );
    document.body.dataset.ready = "true";
  }

  await refresh();
  setInterval(refresh, REFRESH_MS);
}
