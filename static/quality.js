// Charts of the data-quality pages. Each chart's data is inlined in the page (json_script) and
// named by a data attribute; htmx.onLoad runs for the first page and for every fragment htmx swaps
// in, so lazily loaded charts are drawn the same way.
(() => {
  const BLUE = "#3b6fb6", LIGHT = "#8fa8d6", RED = "#d9534f", GREEN = "#5cb85c";
  const data = (id) => JSON.parse(document.getElementById(id).textContent);
  const within = (root, selector) => [...(root.matches?.(selector) ? [root] : []), ...root.querySelectorAll(selector)];

  function batchCharts(box) {
    const canvases = box.querySelectorAll("canvas");
    data(box.dataset.batchCharts).forEach((c, i) => new Chart(canvases[i], {
      type: "bar",
      data: { labels: c.labels, datasets: [
        { label: box.dataset.reference || "baseline", data: c.baseline, backgroundColor: LIGHT },
        { label: box.dataset.subject || "batch", data: c.batch, backgroundColor: c.flagged ? RED : GREEN } ] },
      options: { animation: false, scales: { y: { title: { display: true, text: "share of rows" } } } },
    }));
  }

  function driftChart(canvas) {
    const s = { ...data(canvas.dataset.driftChart) };
    if (s.days.length === 1) {
      // One day: its point alone in the middle, and its threshold drawn across the chart (a line of one
      // point would not show at all).
      const pad = (first, none) => [none, first, none];
      Object.assign(s, { days: pad(s.days[0], ""), values: pad(s.values[0], null),
        thresholds: [s.thresholds[0], s.thresholds[0], s.thresholds[0]], drifted: pad(s.drifted[0], false),
        batches: pad(s.batches[0], 0) });
    }
    new Chart(canvas, {
      type: "line",
      data: { labels: s.days, datasets: [
        { label: `${s.metric} of ${s.feature}`, data: s.values, borderColor: BLUE, backgroundColor: BLUE,
          pointBackgroundColor: s.drifted.map((d) => (d ? RED : BLUE)),
          pointRadius: s.drifted.map((d) => (d ? 5 : 2)), spanGaps: true },
        { label: "threshold", data: s.thresholds, borderColor: RED, borderDash: [6, 4], pointRadius: 0,
          stepped: "middle", spanGaps: true } ] },
      options: { animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, title: { display: true, text: s.metric } } },
        plugins: { tooltip: { callbacks: { afterBody: (items) =>
          (s.drifted[items[0].dataIndex] ? "drifted this day; " : "") + `${s.batches[items[0].dataIndex]} batch(es)` } } } },
    });
  }

  const count = new Intl.NumberFormat("en-US");

  function sourceChart(canvas) {
    const s = data(canvas.dataset.sourceChart), key = canvas.dataset.series;
    const active = s.days.filter((d) => d.batches > 0);
    if (active.length < 2) {
      // A new source: one bar at the edge of an empty month says less than a sentence.
      const note = document.createElement("p");
      note.className = "chart-empty hint";
      note.textContent = active.length === 0 ? "No batch in this period yet." :
        `Only ${active[0].day} has batches so far (${count.format(active[0].batches)} batch(es), ` +
        `${count.format(active[0].records)} records): the chart is drawn once a second day has batches.`;
      canvas.closest(".plot").replaceWith(note);
      return;
    }
    drawSourceChart(canvas, s, key);
  }

  function drawSourceChart(canvas, s, key) {
    const rate = key === "rate";
    new Chart(canvas, {
      type: rate ? "line" : "bar",
      data: { labels: s.days.map((d) => d.day), datasets: [{
        label: canvas.getAttribute("aria-label"), data: s.days.map((d) => d[key]),
        borderColor: rate ? RED : BLUE, backgroundColor: rate ? RED : BLUE, pointRadius: rate ? 2 : 0, spanGaps: true }] },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
        scales: { y: rate ? { min: 0, max: 1, title: { display: true, text: "share quarantined" } } : { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  htmx.onLoad((root) => {
    let drawn = 0;
    within(root, "[data-batch-charts]").forEach((box) => { batchCharts(box); drawn++; });
    within(root, "canvas[data-drift-chart]").forEach((canvas) => { driftChart(canvas); drawn++; });
    within(root, "canvas[data-source-chart]").forEach((canvas) => { sourceChart(canvas); drawn++; });
    if (drawn) document.body.dataset.chartsDrawn = "yes";
  });
})();
