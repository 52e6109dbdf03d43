// The label distribution of a training-set version: one bar per label and split, as the share of the
// split's rows (the counts in the tooltip). The data is inlined in the page (json_script); the gate's
// feature charts are drawn by quality.js, as on a batch page.
(() => {
  const COLOURS = ["#3b6fb6", "#5cb85c", "#f0ad4e", "#8fa8d6", "#d9534f", "#6f42c1", "#20c997"];

  function labelChart(canvas) {
    const d = JSON.parse(document.getElementById(canvas.dataset.labelChart).textContent);
    new Chart(canvas, {
      type: "bar",
      data: { labels: d.labels, datasets: d.series.map((s, i) => ({
        label: s.split, data: s.shares, counts: s.counts, backgroundColor: COLOURS[i % COLOURS.length] })) },
      options: { animation: false, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: "share of the split's rows" } } },
        plugins: { tooltip: { callbacks: { label: (item) =>
          `${item.dataset.label}: ${(item.raw * 100).toFixed(1)} % (${item.dataset.counts[item.dataIndex]} rows)` } } } },
    });
    canvas.dataset.drawn = "yes";
  }

  htmx.onLoad((root) => {
    const found = [...(root.matches?.("canvas[data-label-chart]") ? [root] : []),
      ...root.querySelectorAll("canvas[data-label-chart]")];
    found.forEach(labelChart);
  });
})();
