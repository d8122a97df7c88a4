// Flash messages ("Thanks: you acknowledged guidelines version 2.") are news once: a success goes away after
// a few seconds, or as soon as the page changes under htmx (the annotate page never reloads), and any
// message can be dismissed. Errors and warnings stay until dismissed.
(function () {
  "use strict";
  const SUCCESS_MS = 6000;
  const list = document.querySelector(".messages");
  if (!list) return;

  function dismiss(item) {
    item.remove();
    if (!list.querySelector(".msg")) list.remove();
  }

  list.querySelectorAll(".msg").forEach(function (item) {
    const close = document.createElement("button");
    close.type = "button";
    close.className = "link msg-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { dismiss(item); });
    item.appendChild(close);
    if (item.classList.contains("success")) {
      setTimeout(function () { dismiss(item); }, SUCCESS_MS);
      document.body.addEventListener("htmx:afterSwap", function () { dismiss(item); }, { once: true });
    }
  });
})();
