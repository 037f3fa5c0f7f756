// A grid of metric charts that share one set of controls (x axis, smoothing, log scale).
import { lineChart, redrawOnResize } from "../shell/charts.js";

export async function fetchHistory(runId, key, maxPoints) {
  const url = `/api/runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(key)}/history?max_points=${maxPoints}`;
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`history of ${key}: HTTP ${response.status}`);
  return response.json();
}

export class MetricCharts {
  constructor(grid) {
    this.grid = grid;
    this.series = new Map();
    this.figures = new Map();
    this.xAxis = document.getElementById("x-axis");
    this.smoothing = document.getElementById("smoothing");
    this.smoothingValue = document.getElementById("smoothing-value");
    this.logScale = document.getElementById("log-scale");
    for (const control of [this.xAxis, this.smoothing, this.logScale]) {
      control.addEventListener("input", () => this.redraw());
    }
    document.addEventListener("opsloop:theme", () => this.redraw());
    redrawOnResize(grid, () => this.redraw());
  }

  options() {
    this.smoothingValue.textContent = this.smoothing.value;
    return { x: this.xAxis.value, smoothing: Number(this.smoothing.value), logY: this.logScale.checked };
  }

  /** Show (or replace) the chart of ``key`` drawing ``series``. */
  set(key, series) {
    let figure = this.figures.get(key);
    if (!figure) {
      figure = document.createElement("figure");
      figure.className = "chart";
      figure.dataset.key = key;
      const caption = document.createElement("figcaption");
      caption.textContent = key;
      figure.appendChild(caption);
      this.grid.appendChild(figure);
      this.figures.set(key, figure);
    }
    this.series.set(key, series);
    lineChart(figure, series, this.options());
  }

  redraw() {
    const options = this.options();
    for (const [key, figure] of this.figures) lineChart(figure, this.series.get(key), options);
  }
}
