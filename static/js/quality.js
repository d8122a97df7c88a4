// Quality charts: agreement over time and accuracy per annotator, from the page's #quality-data JSON.
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("quality-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);

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

    // Accuracy per annotator as the table beside it gives it: a decimal with its 95 % interval (a bar from the
    // interval's low end to its high end, the figure a dot on it), so a figure measured on few items reads as unsure.
    var accuracy = document.getElementById("chart-accuracy");
    if (accuracy && data.accuracy) {
      var a = data.accuracy;
      var spans = a.values.map(function (_, i) { return a.low && a.low[i] !== null ? [a.low[i], a.high[i]] : null; });
      var lows = spans.concat(a.values.map(function (v) { return v === null ? null : [v]; }))
        .filter(function (s) { return s !== null; }).map(function (s) { return s[0]; }).concat([1]);
      new Chart(accuracy, {
        data: {
          labels: a.labels,
          datasets: [
            {
              type: "line", showLine: false, label: "Accuracy against the final labels", data: a.values, order: 0,
              pointRadius: 6, pointBackgroundColor: "#1d4ed8", pointBorderColor: "#1d4ed8", borderColor: "#1d4ed8",
              backgroundColor: "#1d4ed8",
            },
            {
              type: "bar", label: "95 % interval", data: spans, order: 1, maxBarThickness: 48,
              backgroundColor: "rgba(29, 78, 216, 0.18)", borderColor: "rgba(29, 78, 216, 0.5)", borderWidth: 1,
            },
          ],
        },
        options: {
          maintainAspectRatio: false,
          // from a tenth under the lowest interval: figures of 0.84-0.99 on a 0-1 axis left the bars a few pixels tall
          scales: { y: { min: Math.max(0, Math.floor(10 * Math.min.apply(null, lows) - 1) / 10), max: 1 } },
          interaction: { mode: "index", intersect: false },
          plugins: {
            legend: { labels: { usePointStyle: true } },
            tooltip: {
              filter: function (item) { return item.datasetIndex === 0; },  // one line per person, not one per dataset
              callbacks: {
                label: function (ctx) {
                  var i = ctx.dataIndex;
                  if (a.values[i] === null) return "no final label yet";
                  var text = a.values[i].toFixed(3) + " over " + a.n[i] + " item" + (a.n[i] === 1 ? "" : "s");
                  return spans[i] ? text + " (95 % interval " + spans[i][0].toFixed(2) + "–" + spans[i][1].toFixed(2) + ")" : text;
                },
              },
            },
          },
        },
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
