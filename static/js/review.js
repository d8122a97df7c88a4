// Review page keys, in the annotate page's key space (annotation/review/keys.py). Every command is also a
// real button, form or link that works without this file; here we only map keys onto them:
//   a label's hotkey   pick it as the final label (toggle, multi-label); Enter saves it
//   A, B, …            accept that annotator's answer
//   S send back (asks why) · N next task · F write the final response (instruction projects)
//   Ctrl+Enter in a text box saves its form · Esc leave a field or close the send-back form
// The server puts data-key only on commands whose key no label of the project takes.
// Event delegation on document, so it keeps working after htmx swaps the workspace.
(function () {
  "use strict";

  var isTyping = window.Labelloop.isTyping; // static/js/keys.js

  // A key pressed the moment a new task is swapped in can beat htmx to the new forms (it wires them up after
  // the settle delay): wire them now, or the form would post as a plain page load. Idempotent.
  function panel() {
    var root = document.getElementById("review-panel");
    if (root && window.htmx) window.htmx.process(root);
    return root;
  }

  function closeForms(except) {
    document.querySelectorAll("#review-panel details[open]").forEach(function (d) {
      if (d !== except) d.open = false;
    });
  }

  function pickLabel(root, key) {
    var input = root.querySelector('input[data-hotkey="' + CSS.escape(key) + '"]');
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.focus({ preventScroll: true });
    return true;
  }

  function command(root, key) {
    var target = root.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!target) return false;
    if (target.tagName === "DETAILS") {
      closeForms(target);
      target.open = true;
      var field = target.querySelector("textarea, input:not([type=hidden])");
      if (field) field.focus();
    } else if (/^(TEXTAREA|INPUT)$/.test(target.tagName)) {
      target.focus();
    } else {
      target.click();
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    var root = panel();
    if (!root) return;
    var target = event.target;
    if (isTyping(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
        event.preventDefault();
        target.form.requestSubmit();
      } else if (event.key === "Escape") {
        var box = target.closest("details");
        if (box) box.open = false;
        target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var handled = false;
    if (event.key === "Escape") {
      closeForms(null);
      handled = true;
    } else if (event.key === "Enter") {
      if (target.closest && target.closest("button, a, summary")) return; // they act on Enter themselves
      if (target.form && !target.form.matches("[data-enter-submits]")) return; // e.g. a bulk-accept box: its own form
      var form = root.querySelector("form[data-enter-submits]");
      if (form) {
        form.requestSubmit(); // the browser's validation first: no label picked, nothing is sent
        handled = true;
      }
    } else if (event.key.length === 1) {
      handled = pickLabel(root, event.key) || command(root, event.key.toLowerCase());
    }
    if (handled) event.preventDefault();
  });

  // Where the list scrolls in its own box (narrow screens), a swap starts it at the top: bring the entry of the
  // task shown back into the box's view, without moving the page (the panel's own scroll does that).
  document.addEventListener("htmx:afterSettle", function () {
    var list = document.querySelector(".review-entries");
    var current = list && list.querySelector("li.current");
    if (!current || list.scrollHeight <= list.clientHeight) return;
    var below = current.getBoundingClientRect().top - list.getBoundingClientRect().top;
    list.scrollTop += below - list.clientHeight / 3;
  });

  // "all agreed audit items here" ticks or clears every box of the bulk accept.
  document.addEventListener("change", function (event) {
    if (event.target.id !== "bulk-all") return;
    document.querySelectorAll("#bulk-form input.bulk-pick").forEach(function (box) {
      box.checked = event.target.checked;
    });
  });
})();
