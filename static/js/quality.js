// Quality charts: agreement over time and accuracy per annotator, from the page's #quality-data JSON.
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("quality-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var percent = { min: 0, max: 1, ticks: { callback: function (v) { return Math.round(v * 100) + "%"; } } };

    var trend = document.getElementById("chart-trend");
    if (trend && data.trend) {
      new Chart(trend, {
        type: "line",
        data: {
          labels: data.trend.labels,
          datasets: data.trend.series.map(function (s) {
            return { label: s.label, data: s.values, spanGaps: true, tension: 0.2 };
          }),
        },
        options: { maintainAspectRatio: false, scales: { y: { suggestedMin: 0, suggestedMax: 1 } } },
      });
    }

    var accuracy = document.getElementById("chart-accuracy");
    if (accuracy && data.accuracy) {
      new Chart(accuracy, {
        type: "bar",
        data: { labels: data.accuracy.labels, datasets: [{ label: "Accuracy vs final label", data: data.accuracy.values }] },
        options: { maintainAspectRatio: false, scales: { y: percent }, plugins: { legend: { display: false } } },
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
