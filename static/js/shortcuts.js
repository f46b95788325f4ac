// Keyboard shortcuts for the common moves; "?" lists them. Keys typed into a field are the field's.
(function () {
  "use strict";

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function queueRows() {
    return Array.from(document.querySelectorAll("#queue-results tbody tr[class^='p']"));
  }

  function select(step) {
    var rows = queueRows();
    if (!rows.length) return;
    var current = rows.findIndex(function (row) { return row.classList.contains("kbd-selected"); });
    var next = Math.min(rows.length - 1, Math.max(0, current + step));
    rows.forEach(function (row) { row.classList.remove("kbd-selected"); row.removeAttribute("aria-selected"); });
    rows[next].classList.add("kbd-selected");
    rows[next].setAttribute("aria-selected", "true");
    rows[next].scrollIntoView({block: "nearest"});
  }

  function openSelected() {
    var row = document.querySelector("#queue-results tr.kbd-selected a[href]");
    if (row) window.location.assign(row.getAttribute("href"));
  }

  function focusField(selector) {
    var field = document.querySelector(selector);
    if (field) { field.focus(); return true; }
    return false;
  }

  function assignToMe() {
    var me = document.body.dataset.userId;
    var select = document.querySelector("form select[name='assignee']");
    if (!me || !select || !select.querySelector("option[value='" + me + "']")) return;
    select.value = me;
    select.form.requestSubmit();
  }

  var actions = {
    "?": function () { var help = document.getElementById("shortcuts-help"); if (help) help.showModal(); },
    "j": function () { select(1); },
    "k": function () { select(-1); },
    "o": openSelected,
    "Enter": openSelected,
    "r": function () { focusField("#reply-composer textarea"); },
    "n": function () { focusField("#note-composer textarea"); },
    "a": assignToMe,
    "/": function () { focusField("form.filters input[name='q']"); },
  };

  document.addEventListener("DOMContentLoaded", function () {
    var open = document.getElementById("shortcuts-open");
    if (open) open.addEventListener("click", actions["?"]);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "Enter" && !document.querySelector("#queue-results tr.kbd-selected")) return;
    var action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });
})();
