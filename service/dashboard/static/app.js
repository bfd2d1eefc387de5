// Entry point: asks for a token when none is kept, then renders the page the URL names.
// Pages are ordinary URLs (/, /studies/{id}, /trials/{id}, /workers, /new): links do full
// page loads, and each page module exports render(main, ...ids).

import { checkToken, setToken, signOut, token } from "./api.js";
import { h, replace } from "./ui.js";

const ROUTES = [
  [/^\/$/, "./studies.js", "studies"],
  [/^\/studies\/(\d+)$/, "./study.js", "studies"],
  [/^\/trials\/(\d+)$/, "./trial.js", "studies"],
  [/^\/workers$/, "./workers.js", "workers"],
  [/^\/new$/, "./newstudy.js", "new"],
];

function header(active) {
  const link = (href, label, key) =>
    h("a", { href, class: key === active ? "nav-link active" : "nav-link" }, label);
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "/" }, h("span", { class: "brand-mark" }, "◆"), "tunesmith"),
    h(
      "nav",
      {},
      link("/", "Studies", "studies"),
      link("/workers", "Workers", "workers"),
      link("/new", "New study", "new"),
    ),
    token() ? h("button", { class: "btn btn-quiet", onclick: signOut }, "Sign out") : null,
  );
}

function signIn(main) {
  const input = h("input", {
    type: "password",
    id: "token",
    name: "token",
    autocomplete: "current-password",
    placeholder: "API token",
    required: true,
  });
  const message = h("div", { class: "field-error", id: "token-error" });
  const form = h(
    "form",
    { class: "card signin", id: "signin" },
    h("h1", {}, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "Paste an API token (admin, user or viewer). It is kept for this browser tab only.",
    ),
    h("label", { for: "token" }, "Token"),
    input,
    message,
    h("button", { class: "btn btn-primary", type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (await checkToken(candidate)) {
      setToken(candidate);
      window.location.reload();
    } else {
      message.textContent = "The server refused this token.";
    }
  });
  replace(main, form);
  input.focus();
}

async function start() {
  const path = window.location.pathname.replace(/\/+$/, "") || "/";
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  const main = h("main", { id: "main" });
  document.body.replaceChildren(header(route?.[2]), main);
  if (!route) {
    replace(main, h("h1", {}, "Not found"), h("a", { href: "/" }, "Back to studies"));
    return;
  }
  if (!token()) {
    signIn(main);
    return;
  }
  const [pattern, module] = route;
  const ids = path.match(pattern).slice(1).map(Number);
  const page = await import(module);
  await page.render(main, ...ids);
}

start();
