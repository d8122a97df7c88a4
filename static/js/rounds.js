// Charts of the rounds page: the main metric, agreement and noise rate, and human ratings, one point per closed
// round. The data comes from the #rounds-chart-data JSON the page renders.
(function () {
  "use strict";

  var COLOURS = ["#2f6fde", "#2b8a3e", "#d9480f", "#862e9c"];

  function series(data, key) {
    for (var i = 0; i < data.series.length; i++) if (data.series[i].key === key) return data.series[i];
    return null;
  }

  function chart(id, labels, sets, yOptions) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    new Chart(canvas, {
      type: "line",
      data: {
        labels: labels,
        datasets: sets.map(function (s, i) {
          return { label: s.label, data: s.values, borderColor: COLOURS[i], backgroundColor: COLOURS[i], spanGaps: true };
        }),
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: yOptions || {} } },
    });
  }

  function draw() {
    var source = document.getElementById("rounds-chart-data");
    if (!source) return;
    var data = JSON.parse(source.textContent);
    chart("chart-round-metric", data.labels, [series(data, "main_metric")], { suggestedMin: 0, suggestedMax: 1 });
    chart("chart-round-quality", data.labels, [series(data, "agreement"), series(data, "noise_rate")], {
      suggestedMin: 0,
      suggestedMax: 1,
    });
    chart("chart-round-ratings", data.labels, [series(data, "rating")], { suggestedMin: 0 });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
