// The new-study form: a spec editor prefilled from the objective's defaults
// (GET /objectives), submitted with the user's token. Errors of a 422 answer are shown next
// to the field their `loc` names (the longest field path that is a prefix of it); what fits
// no field is shown above the form.

import { ApiError, get, post } from "./api.js";
import { errorText, h, notice, replace } from "./ui.js";

const STRATEGIES = ["gp", "random", "sobol", "tpe", "skopt"];
const ACQUISITIONS = ["auto", "ei", "pi", "ucb"];

function field(loc, label, input, help) {
  return h(
    "div",
    { class: "field", dataset: { loc } },
    h("label", { for: input.id }, label),
    input,
    help ? h("div", { class: "help" }, help) : null,
    h("div", { class: "field-error", dataset: { errorFor: loc } }),
  );
}

function choice(id, values, selected) {
  return h(
    "select",
    { id, name: id },
    values.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
}

function defaults(schema) {
  const out = {};
  for (const [key, prop] of Object.entries(schema?.properties ?? {})) {
    if ("default" in prop && prop.default !== null) out[key] = prop.default;
  }
  return out;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function number(raw) {
  if (raw.trim() === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : raw;
}

export async function render(main) {
  let objectives;
  try {
    objectives = (await get("/objectives")).data;
  } catch (error) {
    replace(main, notice(`Could not load objectives: ${errorText(error)}`, "error"));
    return;
  }
  const byName = Object.fromEntries(objectives.map((o) => [o.name, o]));
  const first = objectives.find((o) => o.name === "synthetic") ?? objectives[0];
  const inputs = {
    name: h("input", { id: "name", name: "name", required: true, placeholder: "my-study" }),
    objective: choice("objective", objectives.map((o) => [o.name, o.name]), first?.name),
    metric: h("input", { id: "metric", name: "metric" }),
    direction: choice("direction", [["", "objective's default"], ["minimize", "minimize"], ["maximize", "maximize"]], ""),
    strategy: choice("strategy", STRATEGIES.map((s) => [s, s]), "gp"),
    acquisition: choice("acquisition", ACQUISITIONS.map((s) => [s, s]), "auto"),
    maxTrials: h("input", { id: "max_trials", name: "max_trials", type: "number", value: "20" }),
    maxParallel: h("input", { id: "max_parallel", name: "max_parallel", type: "number", value: "4" }),
    seed: h("input", { id: "seed", name: "seed", type: "number", placeholder: "random" }),
    args: h("textarea", { id: "objective_args", name: "objective_args", rows: 6, spellcheck: "false", class: "mono" }),
    space: h("textarea", { id: "space", name: "space", rows: 14, spellcheck: "false", class: "mono" }),
  };
  const description = h("div", { class: "help", id: "objective-description" });
  const formError = h("div", { id: "form-error" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "submit" }, "Create study");
  const form = h(
    "form",
    { class: "card form", id: "new-study", novalidate: true },
    formError,
    h(
      "div",
      { class: "grid-2" },
      h(
        "div",
        {},
        field("name", "Name", inputs.name),
        field("objective", "Objective", inputs.objective, description),
        field("metric", "Metric", inputs.metric, "Leave empty for the objective's metric."),
        field("direction", "Direction", inputs.direction),
        field("strategy.name", "Strategy", inputs.strategy),
        field("strategy.acquisition", "Acquisition (gp)", inputs.acquisition, "auto = GP-Hedge portfolio over EI, PI and UCB."),
        field("budget.max_trials", "Trials (budget)", inputs.maxTrials),
        field("budget.max_parallel", "At most in parallel", inputs.maxParallel),
        field("seed", "Seed", inputs.seed),
      ),
      h(
        "div",
        {},
        field("objective_args", "Objective arguments (JSON)", inputs.args),
        field("space", "Search space (JSON)", inputs.space, "float/int: low, high, log; categorical: choices; fixed: value."),
      ),
    ),
    h("div", { class: "form-actions" }, submit),
  );
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "New study")), form);

  function prefill() {
    const objective = byName[inputs.objective.value];
    if (!objective) return;
    description.textContent = objective.description;
    inputs.metric.placeholder = objective.metric;
    inputs.args.value = pretty(defaults(objective.args_schema));
    inputs.space.value = pretty(objective.space);
  }
  inputs.objective.addEventListener("change", prefill);
  prefill();

  function clearErrors() {
    replace(formError);
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
  }

  function showError(path, message) {
    const fields = [...form.querySelectorAll(".field")];
    let target = null;
    for (const f of fields) {
      const loc = f.dataset.loc.split(".");
      const matches = loc.every((part, i) => String(path[i]) === part);
      if (matches && (!target || loc.length > target.dataset.loc.split(".").length)) target = f;
    }
    if (!target) {
      formError.append(notice(path.length ? `${path.join(".")}: ${message}` : message, "error"));
      return;
    }
    const rest = path.slice(target.dataset.loc.split(".").length).filter((p) => !["float", "int", "categorical", "fixed"].includes(String(p)));
    target.classList.add("invalid");
    const slot = target.querySelector(".field-error");
    const prefix = rest.length ? `${rest.join(".")}: ` : "";
    slot.append(h("div", {}, `${prefix}${message}`));
  }

  function json(input, loc) {
    try {
      return JSON.parse(input.value || "{}");
    } catch (error) {
      showError(loc, `not valid JSON: ${error.message}`);
      return undefined;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const args = json(inputs.args, ["objective_args"]);
    const space = json(inputs.space, ["space"]);
    if (args === undefined || space === undefined) return;
    const body = {
      name: inputs.name.value.trim(),
      objective: inputs.objective.value,
      objective_args: args,
      space,
      strategy: { name: inputs.strategy.value, acquisition: inputs.acquisition.value },
      budget: { max_trials: number(inputs.maxTrials.value), max_parallel: number(inputs.maxParallel.value) },
    };
    if (inputs.metric.value.trim()) body.metric = inputs.metric.value.trim();
    if (inputs.direction.value) body.direction = inputs.direction.value;
    if (number(inputs.seed.value) !== undefined) body.seed = number(inputs.seed.value);
    submit.disabled = true;
    try {
      const study = await post("/studies", body);
      window.location.assign(`/studies/${study.id}`);
    } catch (error) {
      if (error instanceof ApiError && Array.isArray(error.detail)) {
        for (const d of error.detail) showError((d.loc ?? []).slice(d.loc?.[0] === "body" ? 1 : 0), d.msg);
      } else if (error instanceof ApiError && error.status === 409) {
        showError(["name"], errorText(error));
      } else {
        formError.append(notice(errorText(error), "error"));
      }
      form.querySelector(".field.invalid")?.scrollIntoView({ block: "center" });
    } finally {
      submit.disabled = false;
    }
  });
}
