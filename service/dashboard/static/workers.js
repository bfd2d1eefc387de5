// The workers page: each worker's host, GPU, backend and device, current trial (or why it leases
// none), last heartbeat and busy share.

import { get } from "./api.js";
import { ago, errorText, fmt, h, notice, replace, table, when } from "./ui.js";

const REFRESH_MS = 3000;

function busy(fraction) {
  const pct = Math.round(fraction * 100);
  return h(
    "div",
    { class: "progress small-bar", title: `${pct}% of its lifetime busy` },
    h("div", { class: "progress-bar", style: `width: ${pct}%` }),
    h("span", { class: "progress-label" }, `${pct}%`),
  );
}

function device(w) {
  if (!w.device) return h("span", { class: "muted" }, "—");
  const memory = w.device_memory_bytes == null ? "" : `, ${fmt(w.device_memory_bytes / 2 ** 30, 3)} GiB`;
  return h("span", {}, `${w.device}${memory}`, h("div", { class: "small muted" }, w.backend ?? ""));
}

function current(w) {
  if (w.unavailable) {
    return h(
      "span",
      {},
      h("span", { class: "badge state-failed" }, "not leasing"),
      h("div", { class: "small error-text" }, w.unavailable),
    );
  }
  return w.current_trial_id
    ? h("a", { href: `/trials/${w.current_trial_id}` }, `trial ${w.current_trial_id}`)
    : h("span", { class: "muted" }, "idle");
}

function row(w) {
  return h(
    "tr",
    { dataset: { worker: w.id } },
    h("td", { class: "mono" }, w.id),
    h("td", {}, w.host ?? "—"),
    h("td", {}, w.gpu ?? "CPU"),
    h("td", {}, device(w)),
    h("td", { class: "num" }, w.pid ?? "—"),
    h("td", {}, current(w)),
    h("td", { class: "num" }, w.trials_done),
    h("td", { class: "wide" }, busy(w.busy_fraction)),
    h("td", { title: when(w.last_seen_at) }, ago(w.last_seen_at)),
    h("td", { class: "muted" }, when(w.started_at), h("div", { class: "small" }, `busy ${fmt(w.busy_seconds, 3)} s`)),
  );
}

export async function render(main) {
  const body = h("div", { id: "workers" });
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Workers")), h("div", { class: "card" }, body));

  async function refresh() {
    try {
      const page = await get("/workers");
      replace(
        body,
        page.data.length
          ? table(
              ["Worker", "Host", "GPU", "Device", "PID", "Current trial", "Trials done", "Busy", "Last heartbeat", "Started"],
              page.data.map(row),
              { id: "workers-table" },
            )
          : h("p", { class: "empty" }, "No worker has connected yet. Start one with `tunesmith worker --server URL`."),
      );
    } catch (error) {
      replace(body, notice(`Could not load workers: ${errorText(error)}`, "error"));
    }
    document.body.dataset.ready = "true";
  }

  await refresh();
  setInterval(refresh, REFRESH_MS);
}
