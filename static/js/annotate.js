// Keyboard shortcuts for the annotate page. Every command is also a real button or form that works
// without this file; here we only map keys onto them:
//   1-9 (or a label's hotkey)  pick a label (single-label) or toggle it (multi-label)
//   Enter                      submit and load the next item (Ctrl+Enter inside a text box)
//   S skip (asks for a reason) · U undo last · ? unsure + note · G guidelines panel · Esc leave a field
(function () {
  "use strict";

  function workspace() {
    return document.getElementById("workspace");
  }

  var isTyping = window.Labelloop.isTyping; // static/js/keys.js

  // Programmatic changes fire no event: announce them so the draft autosave (hx-trigger="change") sees them.
  function announce(input) {
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function pickLabel(key) {
    const ws = workspace();
    const input = ws && ws.querySelector('input[data-hotkey="' + CSS.escape(key) + '"]');
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    announce(input);
    input.focus({ preventScroll: true });
    return true;
  }

  function submitWorkspace() {
    const ws = workspace();
    const form = ws && ws.querySelector("form[data-enter-submits]");
    if (!form) return false;
    form.requestSubmit(); // runs the browser's validation, then htmx posts it
    return true;
  }

  function openSkip() {
    const panel = document.getElementById("skip-panel");
    if (!panel) return false;
    panel.open = true;
    const reason = document.getElementById("skip-reason");
    if (reason) reason.focus();
    return true;
  }

  function undo() {
    const button = document.getElementById("undo-button");
    if (!button) return false;
    button.click();
    return true;
  }

  function toggleUnsure() {
    const box = document.getElementById("unsure");
    if (!box) return false;
    box.checked = !box.checked;
    announce(box);
    if (box.checked) {
      const note = document.getElementById("note");
      if (note) note.focus();
    }
    return true;
  }

  function toggleGuidelines() {
    const panel = document.getElementById("guide-panel");
    if (!panel) return false;
    panel.open = !panel.open;
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    const target = event.target;

    if (isTyping(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form && target.form.matches("[data-enter-submits]")) {
        event.preventDefault();
        target.form.requestSubmit();
      } else if (event.key === "Escape") {
        const panel = target.closest("details");
        if (panel && panel.id === "skip-panel") panel.open = false;
        target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;

    let handled = false;
    switch (event.key) {
      case "Enter":
        // A focused button or link already acts on Enter by itself.
        if (target.closest && target.closest("button, a, summary")) return;
        handled = submitWorkspace();
        break;
      case "s":
      case "S":
        handled = openSkip();
        break;
      case "u":
      case "U":
        handled = undo();
        break;
      case "?":
        handled = toggleUnsure();
        break;
      case "g":
      case "G":
        handled = toggleGuidelines();
        break;
      default:
        handled = event.key.length === 1 && pickLabel(event.key);
    }
    if (handled) event.preventDefault();
  });

  // A new item was swapped in and focus fell back to the page: give it to what asks for it (the
  // response box of an instruction item); otherwise leave it on the page, where keys are commands.
  document.body.addEventListener("htmx:afterSettle", function () {
    const active = document.activeElement;
    if (active && active !== document.body) return;
    const ws = workspace();
    const wanted = ws && ws.querySelector("[autofocus]");
    if (wanted) wanted.focus();
  });
})();
