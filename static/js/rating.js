// Keyboard shortcuts for the rating and blind A/B pages. Every command is also a real input, button or form
// that works without this file; here we only map keys onto them.
//   Classification:  C correct · W wrong · then the right label's hotkey (a label key alone also means wrong)
//                    Enter submits and loads the next output
//   Spans:           C correct · W wrong: shows the span editor, filled with the model's spans, and focuses it
//                    (static/js/spans.js takes its keys from there) · Enter submits
//   Instruction:     Tab moves between criteria (native) · 1-5 scores the focused (or first unscored) criterion
//                    and moves on · E edits the corrected response · Ctrl+Enter submits
//   Both:            N opens the note · Esc leaves a field
//   Blind A/B:       1 / 2 choose that response · 0 or = tie
(function () {
  "use strict";

  function workspace() {
    return document.getElementById("rating-workspace");
  }

  var isTyping = window.Labelloop.isTyping; // static/js/keys.js

  function check(input) {
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    input.focus({ preventScroll: true });
    return true;
  }

  function verdict(ws, value) {
    return ws.querySelector('input[name="verdict"][value="' + value + '"]');
  }

  function classificationKey(ws, key) {
    const wrong = verdict(ws, "wrong");
    const label = ws.querySelector('input[data-hotkey="' + CSS.escape(key) + '"]');
    // Once "wrong" is chosen, a label's key picks the right label, even where it is C or W.
    if (wrong && wrong.checked && label) return check(label);
    const lower = key.toLowerCase();
    if (lower === "c") return check(verdict(ws, "correct"));
    if (lower === "w") {
      check(wrong);
      return true;
    }
    if (label) {
      if (wrong) wrong.checked = true;
      return check(label);
    }
    return false;
  }

  function spanKey(ws, key) {
    const lower = key.toLowerCase();
    if (lower === "c") return check(verdict(ws, "correct"));
    if (lower !== "w") return false;
    check(verdict(ws, "wrong"));
    const editor = document.getElementById("span-text"); // displayed now that "wrong" is checked
    if (editor) editor.focus({ preventScroll: true });
    return true;
  }

  function scoreKey(ws, key, target) {
    if (!/^[1-5]$/.test(key)) return false;
    const groups = Array.from(ws.querySelectorAll("fieldset.criterion"));
    if (!groups.length) return false;
    let group = target.closest && target.closest("fieldset.criterion");
    if (!group) group = groups.find((g) => !g.querySelector("input:checked")) || groups[0];
    check(group.querySelector('input[value="' + key + '"]'));
    const next = groups[groups.indexOf(group) + 1];
    if (next) {
      (next.querySelector("input:checked") || next.querySelector("input")).focus({ preventScroll: true });
    } else {
      const submit = document.getElementById("submit-button");
      if (submit) submit.focus({ preventScroll: true });
    }
    return true;
  }

  function openNote() {
    const box = document.getElementById("note-box");
    if (!box) return false;
    box.open = true;
    document.getElementById("note").focus();
    return true;
  }

  function ratingKeys(event, ws) {
    const target = event.target;
    if (isTyping(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form && target.form.matches("[data-enter-submits]")) {
        event.preventDefault();
        target.form.requestSubmit();
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (event.altKey || event.metaKey) return;
    if (event.key === "Enter") {
      if (target.closest && target.closest("button, a, summary")) return; // they act on Enter by themselves
      const form = ws.querySelector("form[data-enter-submits]");
      if (!form) return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (event.ctrlKey || event.key.length !== 1) return;
    let handled = false;
    if (ws.dataset.task === "instruction") {
      handled = scoreKey(ws, event.key, target);
      if (!handled && event.key.toLowerCase() === "e") {
        const response = document.getElementById("response");
        if (response) {
          response.focus();
          handled = true;
        }
      }
    } else if (ws.dataset.task === "spans") {
      handled = spanKey(ws, event.key);
    } else {
      handled = classificationKey(ws, event.key);
    }
    if (!handled && event.key.toLowerCase() === "n") handled = openNote();
    if (handled) event.preventDefault();
  }

  function comparisonKeys(event, ws) {
    if (isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key === "=" ? "0" : event.key;
    const button = ws.querySelector('button[data-ab-key="' + CSS.escape(key) + '"]');
    if (!button) return;
    event.preventDefault();
    button.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    const ws = workspace();
    if (ws) return ratingKeys(event, ws);
    const ab = document.getElementById("comparison-workspace");
    if (ab) comparisonKeys(event, ab);
  });

  // A new output was swapped in and focus fell back to the page: give it to what asks for it (the first
  // criterion of a generated response); otherwise leave it on the page, where keys are commands.
  document.body.addEventListener("htmx:afterSettle", function () {
    const active = document.activeElement;
    if (active && active !== document.body) return;
    const ws = workspace();
    const wanted = ws && ws.querySelector("[autofocus]");
    if (wanted) wanted.focus();
  });
})();
