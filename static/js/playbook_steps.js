// The playbook editor's step rows (templates/diagnostics/playbook_edit.html). Without this script each row
// button is a submit button and the server re-renders the rows as typed; with it, rows are added, removed
// and moved in place, a chosen probe's parameter inputs appear at once (copied from the page's
// <template data-probe-params>, which the server renders from the probe's own parameters), and the
// formset's names are renumbered to the rows' new order, so the server reads them in that order.
(() => {
  const start = () => {
    const editor = document.querySelector("[data-step-editor]");
    if (!editor) return;
    editor.classList.add("js");
    const list = editor.querySelector("[data-step-rows]");
    const total = editor.querySelector('input[name="steps-TOTAL_FORMS"]');
    const addButton = editor.querySelector("[data-step-add]");
    const maxSteps = Number(editor.dataset.maxSteps || 20);
    const PREFIXED = /steps-(\d+|__prefix__)-/g;

    const rows = () => Array.from(list.querySelectorAll(":scope > [data-step-row]"));

    const renumber = () => {
      const all = rows();
      all.forEach((row, i) => {
        row.id = `steps-${i}-row`;
        for (const el of row.querySelectorAll("[name], [id], label[for], [aria-describedby]")) {
          for (const attr of ["name", "id", "for", "aria-describedby"]) {
            const value = el.getAttribute(attr);
            if (value) el.setAttribute(attr, value.replace(PREFIXED, `steps-${i}-`));
          }
        }
        for (const button of row.querySelectorAll("button[name='edit']")) {
          button.value = button.value.replace(/-(\d+|__prefix__)$/, `-${i}`);
        }
        row.querySelector("[data-step-number]").textContent = String(i + 1);
        row.querySelector("[data-step-move='up']").disabled = i === 0;
        row.querySelector("[data-step-move='down']").disabled = i === all.length - 1;
      });
      total.value = String(all.length);
      addButton.disabled = all.length >= maxSteps;
    };

    // A probe chosen: its parameter inputs replace the old probe's; a value typed for a parameter of the
    // same name (lines, seconds) is kept.
    const showParams = (select) => {
      const row = select.closest("[data-step-row]");
      const holder = row.querySelector("[data-step-params]");
      const typed = new Map();
      for (const input of holder.querySelectorAll("[name]")) {
        if (input.value !== "") typed.set(input.name.split("-").pop(), input.value);
      }
      holder.replaceChildren();
      const template = Array.from(document.querySelectorAll("template[data-probe-params]"))
        .find((t) => t.dataset.probeParams === select.value);
      if (template) holder.append(template.content.cloneNode(true));
      for (const input of holder.querySelectorAll("[name]")) {
        const key = input.name.split("-").pop();
        if (typed.has(key)) input.value = typed.get(key);
      }
      renumber();
    };

    list.addEventListener("change", (event) => {
      if (event.target.matches("select[name$='-probe']")) showParams(event.target);
    });

    editor.addEventListener("click", (event) => {
      const button = event.target.closest("button[name='edit']");
      if (!button) return;
      event.preventDefault();
      if (button.matches("[data-step-add]")) {
        if (rows().length >= maxSteps) return;
        list.append(document.getElementById("step-row-template").content.cloneNode(true));
        renumber();
        rows().at(-1).querySelector("select").focus();
        return;
      }
      const row = button.closest("[data-step-row]");
      const action = button.dataset.stepMove;
      if (action === "remove") {
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        renumber();
        (next ? next.querySelector("select") : addButton).focus();
        return;
      }
      if (action === "up" && row.previousElementSibling) row.previousElementSibling.before(row);
      if (action === "down" && row.nextElementSibling) row.nextElementSibling.after(row);
      renumber();
      // Moving the row took the focus with it; give it back, or to the other button at an end.
      (button.disabled ? row.querySelector(`[data-step-move='${action === "up" ? "down" : "up"}']`) : button).focus();
    });

    renumber();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
