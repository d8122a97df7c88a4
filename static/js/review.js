// Review queue keys: 1-9 accept that annotator's label, F fix, B send back, N next task, Esc close.
// Event delegation on document, so it keeps working after htmx swaps the workspace.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function openForm(id) {
    var box = document.getElementById(id);
    if (!box) return;
    document.querySelectorAll("#review-panel details[open]").forEach(function (d) {
      if (d !== box) d.open = false;
    });
    box.open = true;
    var field = box.querySelector("textarea, input:not([type=hidden])");
    if (field) field.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      document.querySelectorAll("#review-panel details[open]").forEach(function (d) { d.open = false; });
      if (typing(event.target)) event.target.blur();
      return;
    }
    if (typing(event.target) || !document.getElementById("review-panel")) return;
    var key = event.key.toLowerCase();
    var target = null;
    if (/^[1-9]$/.test(key)) {
      target = document.querySelector('#review-panel button.accept[data-key="' + key + '"]');
    } else if (key === "n") {
      target = document.getElementById("review-next");
    } else if (key === "f") {
      event.preventDefault();
      openForm("review-fix");
      return;
    } else if (key === "b") {
      event.preventDefault();
      openForm("review-send-back");
      return;
    }
    if (target) {
      event.preventDefault();
      target.click();
    }
  });
})();
