// Import page: send the form by XHR so the browser reports upload progress, then show the job's
// progress fragment, which polls itself through htmx until the import is done; when it is (here, or in
// the fragment's own polling through the HX-Trigger header) "import-finished" refreshes "Recent imports".
// Without this script the form posts normally and the server redirects to the job's page.
(function () {
  "use strict";
  const form = document.getElementById("import-form");
  if (!form) return;
  const box = document.getElementById("upload-progress");
  const bar = box.querySelector(".progress");
  const fill = bar.querySelector("span");
  const label = document.getElementById("upload-label");
  const target = document.getElementById("import-status");
  const button = form.querySelector("button[type=submit]");
  const preview = document.getElementById("import-preview");
  const emptyPreview = preview ? preview.innerHTML : "";

  function show(percent, text) {
    fill.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
    label.textContent = text;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("HX-Request", "true"); // the server answers with the progress fragment
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      const percent = Math.round((100 * e.loaded) / e.total);
      show(percent, percent < 100 ? "Uploading… " + percent + "%" : "Uploaded; checking the file…");
    });
    xhr.addEventListener("load", function () {
      box.hidden = true;
      button.disabled = false;
      target.innerHTML = xhr.responseText;
      if (window.htmx) window.htmx.process(target);
      if (xhr.status < 400) {
        form.reset();
        if (preview) preview.innerHTML = emptyPreview; // the file it described is no longer chosen
      }
      // A small file is done already (success or failure): the list of recent imports refreshes now.
      const job = target.querySelector(".import-job");
      if (job && job.dataset.done === "true") document.body.dispatchEvent(new CustomEvent("import-finished"));
    });
    xhr.addEventListener("error", function () {
      box.hidden = true;
      button.disabled = false;
      target.innerHTML = '<p class="error" role="alert">The upload failed: check your connection and try again.</p>';
    });
    show(0, "Uploading…");
    box.hidden = false;
    button.disabled = true;
    target.innerHTML = "";
    xhr.send(new FormData(form));
  });
})();
