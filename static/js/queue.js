// The queue's "select all on this page" box: ticks or clears every ticket row's box. Bound on the
// document because htmx replaces the table (and the box) on every filter change.
function selectPage(checked) {
  for (const box of document.querySelectorAll('#bulk-form input[name="tickets"]')) {
    box.checked = checked;
  }
}

document.addEventListener("change", (event) => {
  if (event.target.id === "select-page") selectPage(event.target.checked);
});

// A box ticked before this (deferred) script ran, by a quick hand on a slow load, had no listener
// yet: its rows are ticked now, so "Apply to selected" sends what the tech sees selected.
if (document.getElementById("select-page")?.checked) selectPage(true);
