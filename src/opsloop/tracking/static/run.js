// The run page: a chart per metric, refreshed every few seconds while the run is RUNNING.
import { PALETTE } from "../shell/charts.js";
import { fetchRun, showRun } from "./live.js";
import { MetricCharts, fetchHistory } from "./metric_charts.js";

const LIVE_INTERVAL_MS = 3000;
const page = document.getElementById("run-page");
const data = JSON.parse(page.dataset.page);
const charts = new MetricCharts(document.getElementById("chart-grid"), document.getElementById("system-chart-grid"));

async function drawCharts(keys) {
  await Promise.all(keys.map(async (key) => {
    const history = await fetchHistory(data.runId, key, data.chartPoints);
    charts.set(key, [{ label: key, color: PALETTE[0], ...history }]);
  }));
  page.dataset.chartsReady = "true";
}

async function poll() {
  const run = await fetchRun(data.runId);
  if (!run) return;
  showRun(run, document.getElementById("run-status"), document.getElementById("overview"));
  await drawCharts(Object.keys(run.data.metrics).sort());
  if (run.info.status !== "RUNNING") {
    document.querySelector(".live-dot")?.remove();
    return;
  }
  setTimeout(poll, LIVE_INTERVAL_MS);
}

drawCharts(data.metricKeys).catch((error) => console.warn(error));
if (data.status === "RUNNING") setTimeout(poll, LIVE_INTERVAL_MS);
