// Shared by the keyboard-first pages (annotate, rating, blind A/B): load it before the page's own script.
(function () {
  "use strict";

  window.Labelloop = window.Labelloop || {};

  // Keys typed into a text field are text, not commands; radios and checkboxes take commands.
  window.Labelloop.isTyping = function (target) {
    return Boolean(
      target.closest &&
        target.closest('textarea, select, [contenteditable], input:not([type="radio"]):not([type="checkbox"])')
    );
  };
})();
