// The LLM usage dashboard's charts: cost, tokens, calls, p50/p95 latency and error rate over
// time, one line per group (model, route, key or user). The page lists the charts (one <figure>
// each, captioned) and the table beside them reads without JavaScript; this draws them with the
// shell's lineChart, time on x and a dot per bucket (empty buckets are left out, not zeros).
import { PALETTE, legend, lineChart, redrawOnResize } from "../shell/charts.js";

const grid = document.getElementById("usage-charts");

function coloured(chart) {
  return chart.series.map((s, i) => ({ ...s, color: PALETTE[i % PALETTE.length] }));
}

function draw(charts, figures) {
  charts.forEach((chart, index) => lineChart(figures[index], coloured(chart), { x: "time", markers: true }));
}

if (grid) {
  const charts = JSON.parse(grid.dataset.charts);
  const figures = [...grid.querySelectorAll("figure.chart")];
  draw(charts, figures);
  charts.forEach((chart, index) => legend(figures[index], coloured(chart).map(({ label, color }) => ({ label, color }))));
  redrawOnResize(grid, () => draw(charts, figures));
  document.addEventListener("opsloop:theme", () => draw(charts, figures));
  grid.dataset.chartsReady = "true";
}
