// Small DOM and formatting helpers shared by the pages.

// h("a", {href: "/x", class: "link"}, "text", child...) -> an element. Attributes starting
// with "on" become listeners; null/undefined/false children are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return el;
}

export function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(digits - 1);
    return String(Number(value.toPrecision(digits)));
  }
  return String(value);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return seconds < 2 ? "just now" : `${duration(seconds)} ago`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function badge(state) {
  return h("span", { class: `badge state-${state}` }, state);
}

export function progress(done, total) {
  const share = total > 0 ? Math.min(done / total, 1) : 0;
  return h(
    "div",
    { class: "progress", title: `${done} of ${total}` },
    h("div", { class: "progress-bar", style: `width: ${(share * 100).toFixed(1)}%` }),
    h("span", { class: "progress-label" }, `${done} / ${total}`),
  );
}

export function notice(message, kind = "info") {
  return h("div", { class: `notice notice-${kind}` }, message);
}

export function errorText(error) {
  if (Array.isArray(error?.detail)) return error.detail.map((d) => d.msg).join("; ");
  return error?.message ?? String(error);
}

// Calls fn at most once per `ms`, always running the last call.
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

export function finishedCount(study) {
  const c = study.counts;
  return (c.complete ?? 0) + (c.pruned ?? 0) + (c.failed ?? 0);
}

export function table(headers, rows, attrs = {}) {
  return h(
    "table",
    { class: "table", ...attrs },
    h("thead", {}, h("tr", {}, headers.map((x) => (x instanceof Node ? x : h("th", {}, x))))),
    h("tbody", {}, rows),
  );
}
