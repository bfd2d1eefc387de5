// The trial page: state, params, the GP's prediction, attempts (workers, outcomes, errors),
// learning curve and artifacts. Artifacts are fetched with the bearer header and shown from
// object URLs. While the trial is open, its study's event stream refreshes the page.

import { blobUrl, followStudy, get } from "./api.js";
import { trialCurvePlot } from "./plots.js";
import { badge, duration, errorText, fmt, h, notice, replace, table, throttle, when } from "./ui.js";

function keyValues(entries) {
  return h(
    "table",
    { class: "table kv" },
    h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
  );
}

function artifactTile(artifact) {
  const isImage = artifact.content_type.startsWith("image/");
  const body = h("div", { class: "artifact-body" }, h("span", { class: "muted" }, "loading…"));
  const tile = h(
    "figure",
    { class: "artifact", dataset: { name: artifact.name } },
    body,
    h("figcaption", {}, artifact.name, h("span", { class: "muted small" }, ` · ${artifact.content_type} · ${fmt(artifact.size / 1024, 3)} KiB`)),
  );
  blobUrl(artifact.url)
    .then((url) => {
      if (isImage) {
        replace(
          body,
          h(
            "button",
            { class: "zoom", title: "enlarge", "aria-label": `enlarge ${artifact.name}`, onclick: () => openLightbox(url, artifact.name) },
            h("img", { src: url, alt: artifact.name, loading: "lazy" }),
          ),
        );
      } else {
        replace(body, h("a", { href: url, download: artifact.name.split("/").pop(), class: "btn btn-small" }, "Download"));
      }
    })
    .catch((error) => replace(body, notice(errorText(error), "error")));
  return tile;
}

// The image at `url` enlarged over the page; Escape, a click anywhere or the close button
// closes it and gives the focus back.
function openLightbox(url, caption) {
  const back = document.activeElement;
  const close = () => {
    document.removeEventListener("keydown", onKey);
    overlay.remove();
    back?.focus?.();
  };
  const onKey = (event) => {
    if (event.key === "Escape") close();
  };
  const closeButton = h("button", { class: "lightbox-close", "aria-label": "close" }, "×");
  const overlay = h(
    "div",
    { class: "lightbox", id: "lightbox", role: "dialog", "aria-modal": "true", "aria-label": caption, onclick: close },
    h("img", { src: url, alt: caption }),
    h("div", { class: "lightbox-caption" }, caption, h("span", { class: "muted" }, " · Esc or click to close")),
    closeButton,
  );
  document.addEventListener("keydown", onKey);
  document.body.append(overlay);
  closeButton.focus();
}

function suggestionInfo(trial) {
  const s = trial.suggestion ?? {};
  if (s.source !== "gp") return `${s.source ?? trial.source}`;
  return `GP, ${s.acquisition} = ${fmt(s.acquisition_value, 4)}; predicted ${fmt(s.mean, 4)} ± ${fmt(s.std, 3)}`;
}

function view(trial, study) {
  const curve = h("div", { class: "plot", id: "trial-curve" });
  const open = trial.state === "running" || trial.state === "queued";
  const page = [
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "crumbs" },
        h("a", { href: "/" }, "Studies"),
        " / ",
        h("a", { href: `/studies/${study.id}` }, study.name),
        " / ",
        `trial #${trial.number}`,
      ),
      h("h1", {}, `Trial #${trial.number} `, badge(trial.state)),
      trial.error ? notice(`Error: ${trial.error}`, "error") : null,
      trial.dataset?.source === "fallback"
        ? notice(
            `Trained on ${trial.dataset.location}, standing in for ${trial.dataset.fallback_for}` +
              (trial.dataset.reason ? ` (${trial.dataset.reason})` : ""),
            "warn",
          )
        : null,
      h(
        "div",
        { class: "grid-2" },
        keyValues([
          [study.metric, h("strong", { id: "trial-value" }, fmt(trial.value, 6))],
          ["last step", fmt(trial.step)],
          ["duration", duration(trial.duration_seconds)],
          ["worker", trial.worker_id ?? "—"],
          ["attempts", trial.attempt],
          ["seed", trial.seed],
          ["suggested by", suggestionInfo(trial)],
          ["dataset", datasetLine(trial.dataset)],
          ["started", when(trial.started_at)],
          ["finished", when(trial.finished_at)],
        ]),
        keyValues(Object.entries(trial.params).map(([k, v]) => [k, h("span", { class: "mono" }, fmt(v, 6))])),
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Attempts"),
      trial.attempts.length
        ? table(
            ["#", "worker", "outcome", "started", "ended", "error"],
            trial.attempts.map((a) =>
              h(
                "tr",
                {},
                h("td", { class: "num" }, a.number),
                h("td", { class: "mono small" }, a.worker_id ?? "ask/tell"),
                h("td", {}, badge(a.outcome)),
                h("td", {}, when(a.started_at)),
                h("td", {}, when(a.ended_at)),
                h("td", { class: "error-text" }, a.error ?? ""),
              ),
            ),
            { id: "attempts-table" },
          )
        : h("p", { class: "muted" }, open ? "Not started yet." : "No attempt recorded."),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Learning curve"),
      trial.values.length ? curve : h("p", { class: "muted" }, "No intermediate value reported."),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Artifacts"),
      trial.artifacts.length
        ? h("div", { class: "artifacts", id: "artifacts" }, trial.artifacts.map(artifactTile))
        : h("p", { class: "muted" }, "This trial wrote no artifact."),
    ),
  ];
  return { page, curve };
}

export function datasetLine(d) {
  if (!d) return "—";
  return h(
    "span",
    { id: "trial-dataset", title: `sha256 ${d.sha256}` },
    `${d.name} (${d.source}: ${d.location}; ${d.n_train} train / ${d.n_val} val, sha256 ${d.sha256.slice(0, 12)})`,
  );
}

export async function render(main, trialId) {
  async function load() {
    const trial = await get(`/trials/${trialId}`);
    const study = await get(`/studies/${trial.study_id}`);
    const { page, curve } = view(trial, study);
    replace(main, page);
    if (trial.values.length) await trialCurvePlot(curve, trial.values, study.metric);
    return trial;
  }
  let trial;
  try {
    trial = await load();
  } catch (error) {
    replace(main, notice(`Could not load trial ${trialId}: ${errorText(error)}`, "error"));
    return;
  }
  document.body.dataset.ready = "true";
  if (trial.state === "running" || trial.state === "queued") {
    const reload = throttle(() => load().catch(() => {}), 1000);
    followStudy(trial.study_id, (event, data) => {
      if (event === "trial" && data.id === trial.id) reload();
    });
  }
}
