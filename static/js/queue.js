// The queue's "select all on this page" box: ticks or clears every ticket row's box. Bound on the
// document because htmx replaces the table (and the box) on every filter change.
document.addEventListener("change", (event) => {
  if (event.target.id !== "select-page") return;
  for (const box of document.querySelectorAll('#bulk-form input[name="tickets"]')) {
    box.checked = event.target.checked;
  }
});
