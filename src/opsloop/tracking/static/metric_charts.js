// A grid of metric charts that share one set of controls (x axis, smoothing, log scale).
// A metric with one point per run is drawn as its value (or bars across runs), not as an empty
// line chart; ``system/*`` metrics (CPU, memory, GPU) go to their own grid when the page has one.
import { lineChart, redrawOnResize, valueChart } from "../shell/charts.js";

export const SYSTEM_PREFIX = "system/";

export async function fetchHistory(runId, key, maxPoints) {
  const url = `/api/runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(key)}/history?max_points=${maxPoints}`;
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`history of ${key}: HTTP ${response.status}`);
  return response.json();
}

export class MetricCharts {
  constructor(grid, systemGrid = null) {
    this.grid = grid;
    this.systemGrid = systemGrid;
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
      const system = this.systemGrid && key.startsWith(SYSTEM_PREFIX);
      (system ? this.systemGrid : this.grid).appendChild(figure);
      if (system) this.systemGrid.closest("section")?.removeAttribute("hidden");
      this.figures.set(key, figure);
    }
    this.series.set(key, series);
    this.draw(figure, series, this.options());
  }

  draw(figure, series, options) {
    if (series.length && series.every((s) => s.values.length <= 1)) {
      const logged = series.filter((s) => s.values.length === 1);
      valueChart(figure, logged.map((s) => ({ label: s.label, color: s.color, value: s.values[0], step: s.steps[0] })));
    } else {
      lineChart(figure, series, options);
    }
  }

  redraw() {
    const options = this.options();
    for (const [key, figure] of this.figures) this.draw(figure, this.series.get(key), options);
  }
}
