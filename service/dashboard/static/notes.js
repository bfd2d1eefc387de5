// The study's notes card: markdown kept with the study (PATCH /studies/{id} {notes}), shown
// rendered (markdown.js: no HTML is ever interpreted) with an Edit / Save / Cancel editor.
// Only the owner or an admin may save: anyone else sees the server's 403 under the editor.

import { patch } from "./api.js";
import { renderMarkdown } from "./markdown.js";
import { errorText, h, notice, replace } from "./ui.js";

const MAX_CHARS = 20000;

export function notesCard(ctx) {
  const body = h("div", { id: "study-notes" });
  const message = h("div");
  const edit = h("button", { class: "btn btn-small", id: "notes-edit" }, "Edit");
  const el = h(
    "section",
    { class: "card", id: "notes-card" },
    h("div", { class: "card-head" }, h("h2", {}, "Notes"), edit),
    message,
    body,
  );

  function show() {
    const text = ctx.study.notes ?? "";
    replace(body, text.trim() ? renderMarkdown(text) : h("p", { class: "muted small" }, "No notes yet. Edit to keep what you learn from this study (markdown)."));
    edit.hidden = false;
  }

  function editor() {
    const area = h("textarea", { id: "notes-text", rows: 8, maxlength: MAX_CHARS, "aria-label": "notes (markdown)" });
    area.value = ctx.study.notes ?? "";
    const save = h("button", { class: "btn btn-small btn-primary", id: "notes-save" }, "Save");
    const cancel = h("button", { class: "btn btn-small", id: "notes-cancel" }, "Cancel");
    save.addEventListener("click", async () => {
      save.disabled = true;
      try {
        ctx.study = await patch(`/studies/${ctx.study.id}`, { notes: area.value });
        replace(message);
        show();
      } catch (error) {
        replace(message, notice(`Notes not saved: ${errorText(error)}`, "error"));
        save.disabled = false;
      }
    });
    cancel.addEventListener("click", () => {
      replace(message);
      show();
    });
    edit.hidden = true;
    replace(
      body,
      area,
      h("div", { class: "toolbar notes-actions" }, h("span", { class: "muted small" }, "Markdown: # headings, **bold**, *italic*, `code`, lists, [links](https://…)"), save, cancel),
    );
    area.focus();
  }

  edit.addEventListener("click", editor);
  show();
  // A study event: shows notes changed elsewhere, unless the editor is open.
  const update = () => {
    if (!edit.hidden) show();
  };
  return { el, update };
}
