// The compare page: overlaid metric charts (or each run's final value as a bar), a scatter of
// a param or metric against a metric, parallel coordinates, and the "only differences" switch.
import { PALETTE, legend, parallelCoordinates, redrawOnResize, scatterChart } from "../shell/charts.js";
import { MetricCharts, SYSTEM_PREFIX, fetchHistory } from "./metric_charts.js";

const page = document.getElementById("compare-page");
const data = JSON.parse(page.dataset.page);
const runs = data.runs.map((run, i) => ({ ...run, color: PALETTE[i % PALETTE.length] }));

legend(document.getElementById("run-legend"), runs.map((r) => ({ label: r.name, color: r.color })));

const charts = new MetricCharts(
  document.getElementById("chart-grid"), document.getElementById("system-chart-grid"), { finalBars: true },
);
async function drawCharts() {
  await Promise.all(data.metricKeys.map(async (key) => {
    const series = await Promise.all(runs.filter((r) => key in r.metrics).map(async (run) => {
      const history = await fetchHistory(run.id, key, data.chartPoints);
      return { label: run.name, color: run.color, origin: run.start, final: run.metrics[key], ...history };
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
const allDims = [
  ...data.paramKeys.map((key) => ({ key: `p:${key}`, label: key })),
  ...data.metricKeys.filter((key) => !key.startsWith(SYSTEM_PREFIX)).map((key) => ({ key: `m:${key}`, label: key })),
];
const rows = runs.map((run) => {
  const values = {};
  for (const [k, v] of Object.entries(run.params)) values[`p:${k}`] = numericOrText(v);
  for (const [k, v] of Object.entries(run.metrics)) values[`m:${k}`] = v;
  return { label: run.name, color: run.color, values };
});

// The axes start as the params and metrics that differ between the runs (at most
// DEFAULT_AXES); the picker adds or removes any of them.
const DEFAULT_AXES = 8;
const differs = (dim) => new Set(rows.map((r) => String(r.values[dim.key] ?? ""))).size > 1;
const initial = new Set(allDims.filter(differs).slice(0, DEFAULT_AXES).map((d) => d.key));
if (!initial.size) allDims.slice(0, DEFAULT_AXES).forEach((d) => initial.add(d.key));
const picker = document.getElementById("parcoords-axes");
for (const dim of allDims) {
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = dim.key;
  box.checked = initial.has(dim.key);
  box.addEventListener("change", () => drawParcoords());
  label.append(box, ` ${dim.key.startsWith("p:") ? "params" : "metrics"}.${dim.label}`);
  picker.appendChild(label);
}
const chosenDims = () => {
  const chosen = new Set([...picker.querySelectorAll("input:checked")].map((box) => box.value));
  return allDims.filter((dim) => chosen.has(dim.key));
};
const drawParcoords = () => parallelCoordinates(parcoords, rows, chosenDims());
drawParcoords();
redrawOnResize(parcoords, drawParcoords);
document.addEventListener("opsloop:theme", drawParcoords);

// Scatter: x is any param or metric (a param that differs first), y any metric.
const scatter = document.getElementById("scatter");
const scatterX = document.getElementById("scatter-x");
const scatterY = document.getElementById("scatter-y");
const scatterLog = document.getElementById("scatter-log");
for (const dim of allDims) scatterX.append(new Option(`${dim.key.startsWith("p:") ? "params" : "metrics"}.${dim.label}`, dim.key));
for (const dim of allDims.filter((d) => d.key.startsWith("m:"))) scatterY.append(new Option(`metrics.${dim.label}`, dim.key));
scatterX.value = (allDims.find((d) => d.key.startsWith("p:") && differs(d)) ?? allDims[0])?.key ?? "";
scatterY.value = allDims.find((d) => d.key.startsWith("m:") && d.key !== scatterX.value)?.key ?? scatterY.value;
const drawScatter = () => {
  const label = (select) => select.selectedOptions[0]?.textContent ?? "";
  const points = rows.map((row) => ({ label: row.label, color: row.color, x: row.values[scatterX.value], y: row.values[scatterY.value] }));
  scatterChart(scatter, points, { xLabel: label(scatterX), yLabel: label(scatterY), logY: scatterLog.checked });
};
for (const control of [scatterX, scatterY, scatterLog]) control.addEventListener("input", drawScatter);
if (scatterY.options.length) drawScatter();
else scatter.closest("section").hidden = true;
redrawOnResize(scatter, drawScatter);
document.addEventListener("opsloop:theme", drawScatter);

document.getElementById("only-diff").addEventListener("change", (event) => {
  document.getElementById("diff-table").classList.toggle("only-diff", event.target.checked);
});

drawCharts().catch((error) => console.warn(error));
