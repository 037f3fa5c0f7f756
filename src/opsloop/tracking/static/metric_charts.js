// A grid of metric charts that share one set of controls (x axis, smoothing, log scale), each
// chart with its own tools that override them: its x axis, log scale, and (comparing runs) a
// bar chart of each run's final value instead of the lines.
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
  constructor(grid, systemGrid = null, { finalBars = false } = {}) {
    this.grid = grid;
    this.finalBars = finalBars;
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

  /** The page's options as this chart's own tools change them. */
  chartOptions(figure, options) {
    const x = figure.querySelector(".chart-x")?.value;
    const log = figure.querySelector(".chart-log")?.checked;
    return { ...options, x: x || options.x, logY: options.logY || Boolean(log) };
  }

  tools(figure) {
    const tools = document.createElement("div");
    tools.className = "chart-tools";
    const x = document.createElement("select");
    x.className = "chart-x";
    x.setAttribute("aria-label", `x axis of ${figure.dataset.key}`);
    for (const [value, text] of [["", "x: as above"], ["step", "x: step"], ["relative", "x: relative time"], ["time", "x: wall time"]]) {
      x.append(new Option(text, value));
    }
    const log = document.createElement("input");
    log.type = "checkbox";
    log.className = "chart-log";
    const logLabel = document.createElement("label");
    logLabel.append(log, " log");
    tools.append(x, logLabel);
    if (this.finalBars) {
      const bars = document.createElement("input");
      bars.type = "checkbox";
      bars.className = "chart-bars";
      const barsLabel = document.createElement("label");
      barsLabel.title = "One bar per run: its last logged value";
      barsLabel.append(bars, " final values");
      tools.append(barsLabel);
    }
    tools.addEventListener("input", () => this.draw(figure, this.series.get(figure.dataset.key), this.options()));
    return tools;
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
      figure.append(caption, this.tools(figure));
      const system = this.systemGrid && key.startsWith(SYSTEM_PREFIX);
      (system ? this.systemGrid : this.grid).appendChild(figure);
      if (system) this.systemGrid.closest("section")?.removeAttribute("hidden");
      this.figures.set(key, figure);
    }
    this.series.set(key, series);
    this.draw(figure, series, this.options());
  }

  draw(figure, series, options) {
    const once = series.length && series.every((s) => s.values.length <= 1);
    figure.querySelector(".chart-tools").hidden = once;
    if (once || figure.querySelector(".chart-bars")?.checked) {
      const logged = series.filter((s) => s.values.length >= 1);
      valueChart(figure, logged.map((s) => ({
        label: s.label, color: s.color, value: s.final ?? s.values.at(-1), step: s.steps.at(-1),
      })));
      if (!once) figure.dataset.kind = "final";
    } else {
      lineChart(figure, series, this.chartOptions(figure, options));
    }
  }

  redraw() {
    const options = this.options();
    for (const [key, figure] of this.figures) this.draw(figure, this.series.get(key), options);
  }
}
