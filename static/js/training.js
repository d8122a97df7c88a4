// Live charts of a training run: training loss and validation figures, learning rate. The data comes from the
// #run-chart-data JSON inside the htmx-polled fragment; the canvases sit outside it, so each poll updates the
// charts in place instead of redrawing them.
(function () {
  "use strict";

  var charts = {};
  var LOWER = { loss: true, perplexity: true, ece: true };

  function points(steps, values) {
    var out = [];
    for (var i = 0; i < steps.length; i++) {
      if (values[i] !== null && values[i] !== undefined) out.push({ x: steps[i], y: values[i] });
    }
    return out;
  }

  function chart(id, datasets, yOptions) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    if (charts[id]) {
      charts[id].data.datasets = datasets;
      charts[id].update("none");
      return;
    }
    charts[id] = new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        elements: { point: { radius: 0 } },
        interaction: { mode: "nearest", intersect: false },
        scales: { x: { type: "linear", title: { display: true, text: "step" } }, y: yOptions || {} },
      },
    });
  }

  // A span run has no validation curve: its third chart is entity F1 per label on the test split, once evaluated.
  function perLabel(figures) {
    var canvas = document.getElementById("chart-eval");
    var empty = document.getElementById("chart-eval-empty");
    if (empty) empty.hidden = Boolean(figures);
    if (!figures || !canvas || typeof Chart === "undefined" || charts["chart-eval"]) return;
    charts["chart-eval"] = new Chart(canvas, {
      type: "bar",
      data: {
        labels: figures.labels.map(function (name, i) { return name + " (" + figures.support[i] + ")"; }),
        datasets: [{ label: "test entity F1 per label (entities)", data: figures.f1, backgroundColor: "#7e57c2" }],
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 1 } } },
    });
  }

  function draw() {
    var source = document.getElementById("run-chart-data");
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var train = data.train, evals = data.eval;
    var lossSets = [{ label: "training loss", data: points(train.steps, train.loss), borderWidth: 1.5 }];
    if (evals.series.loss) {
      lossSets.push({ label: "validation loss", data: points(evals.steps, evals.series.loss), borderWidth: 2, pointRadius: 3 });
    }
    chart("chart-loss", lossSets);
    chart("chart-lr", [{ label: "learning rate", data: points(train.steps, train.lr), borderWidth: 1.5 }], {
      ticks: { callback: function (v) { return Number(v).toExponential(1); } },
    });
    var evalSets = Object.keys(evals.series)
      .filter(function (name) { return !LOWER[name] || name === "perplexity"; })
      .map(function (name) {
        return { label: "validation " + name, data: points(evals.steps, evals.series[name]), borderWidth: 2, pointRadius: 3 };
      });
    if ("per_label" in data) perLabel(data.per_label);
    else chart("chart-eval", evalSets);
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "run-live") draw();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
