// Charts of the label quality pages: alpha per week with its interval as a band, and a rater's weekly
// labels and gold accuracy. Each chart's data is inlined in the page (json_script), named by a data attribute.
(() => {
  const BLUE = "#3b6fb6", BAND = "rgba(59, 111, 182, 0.18)", GREEN = "#5cb85c";
  const data = (id) => JSON.parse(document.getElementById(id).textContent);

  function alphaChart(canvas) {
    const s = data(canvas.dataset.alphaChart);
    new Chart(canvas, {
      type: "line",
      data: { labels: s.weeks, datasets: [
        // The band: the upper bound filled down to the lower one (the dataset before it).
        { label: "95 % interval, low", data: s.low, borderWidth: 0, pointRadius: 0, fill: false, spanGaps: true },
        { label: "95 % interval", data: s.high, borderWidth: 0, pointRadius: 0, backgroundColor: BAND, fill: "-1",
          spanGaps: true },
        { label: `Krippendorff's α (${s.level})`, data: s.alpha, borderColor: BLUE, backgroundColor: BLUE,
          pointRadius: 3, spanGaps: true } ] },
      options: { animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        scales: { y: { suggestedMin: 0, suggestedMax: 1, title: { display: true, text: "α" } } },
        plugins: { legend: { labels: { filter: (item) => item.datasetIndex !== 0 } },
          tooltip: { callbacks: { afterBody: (items) => `${s.items[items[0].dataIndex]} item(s)` } } } },
    });
  }

  function trendChart(canvas) {
    const s = data(canvas.dataset.trendChart);
    new Chart(canvas, {
      data: { labels: s.weeks, datasets: [
        { type: "bar", label: "labels", data: s.labels, backgroundColor: "#8fa8d6", yAxisID: "labels" },
        { type: "line", label: "gold accuracy", data: s.gold_accuracy, borderColor: GREEN, backgroundColor: GREEN,
          yAxisID: "accuracy", spanGaps: true, pointRadius: 3 } ] },
      options: { animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        scales: { labels: { position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "labels" } },
          accuracy: { position: "right", min: 0, max: 1, grid: { drawOnChartArea: false },
            title: { display: true, text: "gold accuracy" } } },
        plugins: { tooltip: { callbacks: { afterBody: (items) => `${s.gold[items[0].dataIndex]} gold answer(s)` } } } },
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    let drawn = 0;
    document.querySelectorAll("canvas[data-alpha-chart]").forEach((canvas) => { alphaChart(canvas); drawn++; });
    document.querySelectorAll("canvas[data-trend-chart]").forEach((canvas) => { trendChart(canvas); drawn++; });
    if (drawn) document.body.dataset.chartsDrawn = "yes";
  });
})();
