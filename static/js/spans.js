// The span editor: mark labelled spans of an item's text, keyboard first. The server cuts the text into
// pieces (`.seg` words and punctuation, `.gap` spaces) and writes each piece's offsets in code points
// (data-s, data-e), so this file never counts characters itself: JavaScript strings count UTF-16 units,
// in which an emoji is two, and offsets counted here would disagree with the server's.
//   ← →            move the caret by word      Shift+← →  extend the selection   Home/End  first/last word
//   a label's key  mark the selection (or the word at the caret) with that label; same range: relabel
//   Backspace/Del  remove the span at the caret   Ctrl+Z  undo the last span change   Esc  drop the selection
// The mouse selects too (snapped to whole words). Every change rewrites the form's hidden `spans` field and
// fires "change", so the draft autosave (hx-trigger="change") saves it; read-only copies (the review page's
// A and B, the model's spans on the rating page) are only highlighted.
(function () {
  "use strict";

  var isTyping = window.Labelloop && window.Labelloop.isTyping;

  // An editor that is not displayed (the rating page's, until the verdict is "wrong") takes no keys.
  function editable() {
    return Array.from(document.querySelectorAll(".span-text[data-ready]:not([data-readonly])")).find(function (el) {
      return el.getClientRects().length > 0;
    });
  }

  function parseJson(raw, fallback) {
    try {
      const value = JSON.parse(raw || "");
      return value === null || value === undefined ? fallback : value;
    } catch (err) {
      return fallback;
    }
  }

  function clean(spans) {
    return (Array.isArray(spans) ? spans : []).filter(function (s) {
      return s && Number.isInteger(s.start) && Number.isInteger(s.end) && typeof s.label === "string";
    });
  }

  function sortSpans(spans) {
    spans.sort(function (a, b) {
      return a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    });
  }

  function Editor(root) {
    this.root = root;
    this.readonly = root.hasAttribute("data-readonly");
    this.allowOverlap = root.hasAttribute("data-allow-overlap");
    this.colors = parseJson(root.dataset.colors, {});
    this.pieces = Array.from(root.querySelectorAll("[data-s]"));
    this.segs = this.pieces.filter(function (el) { return el.classList.contains("seg"); });
    this.segs.forEach(function (el, i) { el.dataset.i = String(i); });
    this.input = this.readonly ? null : document.getElementById("spans-input");
    this.list = this.readonly ? null : document.getElementById("span-list");
    this.message = this.readonly ? null : document.getElementById("span-message");
    const source = this.input ? this.input.value : root.dataset.spans;
    this.spans = clean(parseJson(source, []));
    sortSpans(this.spans);
    this.history = [];
    this.caret = this.segs.length ? 0 : -1;
    this.anchor = null;
    root.dataset.ready = "1";
    this.render();
  }

  Editor.prototype.at = function (el) {
    return { s: Number(el.dataset.s), e: Number(el.dataset.e) };
  };

  Editor.prototype.textOf = function (start, end) {
    const self = this;
    return this.pieces
      .filter(function (el) { const p = self.at(el); return p.s >= start && p.e <= end; })
      .map(function (el) { return el.textContent; })
      .join("");
  };

  Editor.prototype.range = function () {
    if (this.caret < 0) return null;
    const a = this.anchor === null ? this.caret : Math.min(this.anchor, this.caret);
    const b = this.anchor === null ? this.caret : Math.max(this.anchor, this.caret);
    return { a: a, b: b, start: this.at(this.segs[a]).s, end: this.at(this.segs[b]).e };
  };

  Editor.prototype.say = function (text) {
    if (this.message) this.message.textContent = text;
  };

  Editor.prototype.render = function () {
    const self = this;
    const range = this.readonly ? null : this.range();
    const endsAt = {};
    this.spans.forEach(function (span) { (endsAt[span.end] = endsAt[span.end] || []).push(span.label); });
    this.pieces.forEach(function (el) {
      const p = self.at(el);
      const over = self.spans.filter(function (s) { return s.start <= p.s && p.e <= s.end; });
      el.classList.toggle("marked", over.length > 0);
      el.classList.toggle("nested", over.length > 1);
      el.style.setProperty("--c", over.length ? self.colors[over[0].label] || "#4f6bed" : "");
      el.title = over.map(function (s) { return s.label; }).join(", ");
      const tags = endsAt[p.e] && over.length ? endsAt[p.e] : null;
      if (tags) el.dataset.tag = tags.join(" · ");
      else delete el.dataset.tag;
      const i = el.dataset.i === undefined ? -1 : Number(el.dataset.i);
      el.classList.toggle("caret", !self.readonly && i === self.caret && self.anchor === null);
      el.classList.toggle("sel", Boolean(range && self.anchor !== null && i >= range.a && i <= range.b));
    });
    if (!this.list) return;
    this.list.replaceChildren();
    this.spans.forEach(function (span, index) {
      const li = document.createElement("li");
      li.style.setProperty("--c", self.colors[span.label] || "#4f6bed");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      const label = document.createElement("strong");
      label.textContent = span.label;
      const quote = document.createElement("span");
      quote.className = "span-quote";
      quote.textContent = "“" + self.textOf(span.start, span.end) + "”";
      const where = document.createElement("span");
      where.className = "muted";
      where.textContent = span.start + "–" + span.end;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link span-remove";
      remove.textContent = "remove";
      remove.setAttribute("aria-label", "Remove " + span.label + " span " + quote.textContent);
      remove.addEventListener("click", function () { self.change(function () { self.spans.splice(index, 1); }); });
      li.append(swatch, label, " ", quote, " ", where, " ", remove);
      self.list.append(li);
    });
    if (!this.spans.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No spans yet.";
      this.list.append(li);
    }
  };

  Editor.prototype.change = function (mutate) {
    this.history.push(JSON.stringify(this.spans));
    mutate();
    sortSpans(this.spans);
    this.save();
  };

  Editor.prototype.save = function () {
    this.render();
    if (!this.input) return;
    this.input.value = JSON.stringify(this.spans);
    this.input.dispatchEvent(new Event("change", { bubbles: true }));
  };

  Editor.prototype.move = function (to, extend) {
    if (!this.segs.length) return;
    if (extend && this.anchor === null) this.anchor = this.caret;
    if (!extend) this.anchor = null;
    this.caret = Math.max(0, Math.min(this.segs.length - 1, to));
    this.segs[this.caret].scrollIntoView({ block: "nearest" });
    this.render();
  };

  Editor.prototype.apply = function (label) {
    const range = this.range();
    if (!range) return;
    const self = this;
    const same = this.spans.findIndex(function (s) { return s.start === range.start && s.end === range.end; });
    if (same >= 0 && this.spans[same].label === label) {
      this.say("That span is already marked " + label + ".");
      return;
    }
    if (same >= 0 && !this.allowOverlap) {
      const old = this.spans[same].label;
      this.change(function () { self.spans[same] = { start: range.start, end: range.end, label: label }; });
      this.say("Relabelled “" + this.textOf(range.start, range.end) + "” from " + old + " to " + label + ".");
    } else {
      const clash = this.allowOverlap ? null : this.spans.find(function (s) { return s.start < range.end && range.start < s.end; });
      if (clash) {
        this.say(
          "Refused: it overlaps the " + clash.label + " span “" + this.textOf(clash.start, clash.end) +
            "”, and this project does not allow overlapping spans. Remove that one first (Backspace)."
        );
        return;
      }
      this.change(function () { self.spans.push({ start: range.start, end: range.end, label: label }); });
      this.say("Marked “" + this.textOf(range.start, range.end) + "” as " + label + ".");
    }
    this.anchor = null;
    this.caret = range.b;
    this.render();
  };

  Editor.prototype.removeAtCaret = function () {
    if (this.caret < 0) return false;
    const p = this.at(this.segs[this.caret]);
    let index = -1;
    this.spans.forEach(function (s, i) {
      if (s.start <= p.s && p.e <= s.end && (index < 0 || s.end - s.start <= this.spans[index].end - this.spans[index].start)) index = i;
    }, this);
    if (index < 0) {
      this.say("No span at the caret.");
      return true;
    }
    const gone = this.spans[index];
    const self = this;
    this.change(function () { self.spans.splice(index, 1); });
    this.say("Removed the " + gone.label + " span “" + this.textOf(gone.start, gone.end) + "”.");
    return true;
  };

  Editor.prototype.undo = function () {
    if (!this.history.length) {
      this.say("Nothing to undo.");
      return true;
    }
    this.spans = JSON.parse(this.history.pop());
    this.save();
    this.say("Undone.");
    return true;
  };

  Editor.prototype.fromMouse = function (event) {
    const selection = window.getSelection();
    const self = this;
    if (selection && !selection.isCollapsed) {
      const hit = this.segs.filter(function (el) { return selection.containsNode(el, true); });
      selection.removeAllRanges();
      if (hit.length) {
        this.anchor = Number(hit[0].dataset.i);
        this.caret = Number(hit[hit.length - 1].dataset.i);
        if (this.anchor === this.caret) this.anchor = null;
      }
    } else {
      const seg = event.target.closest && event.target.closest(".seg");
      if (seg && self.root.contains(seg)) {
        this.caret = Number(seg.dataset.i);
        this.anchor = null;
      }
    }
    this.root.focus({ preventScroll: true });
    this.render();
  };

  function current() {
    const root = editable();
    return root && root.spanEditor;
  }

  function init() {
    // .span-static copies are marked on the server (span_pages.marked_html): nothing to do here.
    document.querySelectorAll(".span-text:not([data-ready]):not(.span-static)").forEach(function (root) {
      const editor = new Editor(root);
      root.spanEditor = editor;
      if (editor.readonly) return;
      root.addEventListener("mouseup", function (event) { editor.fromMouse(event); });
      document.querySelectorAll("[data-span-label]").forEach(function (button) {
        button.addEventListener("click", function () { editor.apply(button.dataset.spanLabel); root.focus(); });
      });
    });
    const active = document.activeElement;
    const root = editable();
    if (root && (!active || active === document.body)) root.focus({ preventScroll: true });
  }

  // Capture phase: the span keys win over the page's own (annotate.js maps digits onto label radios).
  document.addEventListener(
    "keydown",
    function (event) {
      const editor = current();
      if (!editor || event.defaultPrevented || event.isComposing) return;
      const target = event.target;
      if (isTyping && isTyping(target)) return;
      const inEditor = target === editor.root || target === document.body || editor.root.contains(target);
      let handled = false;
      if ((event.ctrlKey || event.metaKey) && !event.altKey && (event.key === "z" || event.key === "Z")) {
        handled = editor.undo();
      } else if (!event.ctrlKey && !event.metaKey && !event.altKey) {
        switch (event.key) {
          case "ArrowRight":
          case "ArrowDown":
            if (inEditor) { editor.move(editor.caret + 1, event.shiftKey); handled = true; }
            break;
          case "ArrowLeft":
          case "ArrowUp":
            if (inEditor) { editor.move(editor.caret - 1, event.shiftKey); handled = true; }
            break;
          case "Home":
            if (inEditor) { editor.move(0, event.shiftKey); handled = true; }
            break;
          case "End":
            if (inEditor) { editor.move(editor.segs.length - 1, event.shiftKey); handled = true; }
            break;
          case "Backspace":
          case "Delete":
            if (inEditor) handled = editor.removeAtCaret();
            break;
          case "Escape":
            if (editor.anchor !== null) { editor.anchor = null; editor.render(); handled = true; }
            break;
          default:
            if (event.key.length === 1) {
              const button = document.querySelector('[data-span-key="' + CSS.escape(event.key) + '"]');
              if (button) { editor.apply(button.dataset.spanLabel); handled = true; }
            }
        }
      }
      if (handled) {
        event.preventDefault();
        event.stopPropagation();
      }
    },
    true
  );

  document.addEventListener("DOMContentLoaded", init);
  document.body && document.body.addEventListener("htmx:afterSettle", init);
  if (document.readyState !== "loading") init();
})();
