// The compare page: overlaid metric charts, parallel coordinates, and the "only differences" switch.
import { PALETTE, legend, parallelCoordinates, redrawOnResize } from "../shell/charts.js";
import { MetricCharts, fetchHistory } from "./metric_charts.js";

const page = document.getElementById("compare-page");
const data = JSON.parse(page.dataset.page);
const runs = data.runs.map((run, i) => ({ ...run, color: PALETTE[i % PALETTE.length] }));

legend(document.getElementById("run-legend"), runs.map((r) => ({ label: r.name, color: r.color })));

const charts = new MetricCharts(document.getElementById("chart-grid"));
async function drawCharts() {
  await Promise.all(data.metricKeys.map(async (key) => {
    const series = await Promise.all(runs.filter((r) => key in r.metrics).map(async (run) => {
      const history = await fetchHistory(run.id, key, data.chartPoints);
      return { label: run.name, color: run.color, origin: run.start, ...history };
    }));
    charts.set(key, series);
  }));
  page.dataset.chartsReady = "true";
}

function numericOrText(value) {
  const number = Number(value);
  return value !== "" && Number.isFinite(number) ? number : value;
}

const parcoords = document.getElementById("parcoords");
const dims = [
  ...data.paramKeys.map((key) => ({ key: `p:${key}`, label: key })),
  ...data.metricKeys.map((key) => ({ key: `m:${key}`, label: key })),
];
const rows = runs.map((run) => {
  const values = {};
  for (const [k, v] of Object.entries(run.params)) values[`p:${k}`] = numericOrText(v);
  for (const [k, v] of Object.entries(run.metrics)) values[`m:${k}`] = v;
  return { label: run.name, color: run.color, values };
});
const drawParcoords = () => parallelCoordinates(parcoords, rows, dims);
drawParcoords();
redrawOnResize(parcoords, drawParcoords);
document.addEventListener("opsloop:theme", drawParcoords);

document.getElementById("only-diff").addEventListener("change", (event) => {
  document.getElementById("diff-table").classList.toggle("only-diff", event.target.checked);
});

drawCharts().catch((error) => console.warn(error));
