// SVG charts for the UI, with no third-party code: metric line charts (step, time or relative
// time on x; smoothing; log scale; hover read-out; optional reference lines and point markers),
// values and bars, a scatter plot (a param against a metric) and a parallel-coordinates plot.
// Everything user-provided goes into the DOM as text nodes or attributes, never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#4f7cff", "#f5793a", "#18b67a", "#c74fd6", "#e3b505", "#1fb5c9",
  "#e0457b", "#7a8b99", "#8c6bf2", "#5aa02c"];
const MARGIN = { top: 10, right: 14, bottom: 26, left: 54 };

function svgEl(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** The figure's chart, emptied and sized to it: an SVG image at least `minWidth` wide. */
function blankSvg(figure, minWidth, height) {
  const svg = figure.querySelector("svg") || svgEl("svg", {}, figure);
  svg.replaceChildren();
  const width = Math.max(minWidth, figure.clientWidth - 20);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  return { svg, width };
}

export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
  return String(Number(value.toPrecision(6)));
}

/** Debiased exponential moving average (as TensorBoard draws it); weight in [0, 1). */
export function smooth(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let last = 0;
  let debias = 0;
  for (let i = 0; i < values.length; i++) {
    last = last * weight + (1 - weight) * values[i];
    debias = debias * weight + (1 - weight);
    out[i] = last / debias;
  }
  return out;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  const nice = residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1;
  return nice * magnitude;
}

function linearTicks(min, max, count) {
  if (min === max) return [min];
  const step = niceStep(max - min, count);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function logTicks(min, max) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    const v = 10 ** e;
    if (v >= min * 0.999 && v <= max * 1.001) ticks.push(v);
  }
  return ticks.length ? ticks : [min, max];
}

function formatX(value, mode) {
  if (mode === "time") return new Date(value).toISOString().slice(11, 19);
  if (mode === "relative") {
    const s = value / 1000;
    return s < 120 ? `${formatNumber(Number(s.toFixed(1)))}s` : `${formatNumber(Number((s / 60).toFixed(1)))}m`;
  }
  return formatNumber(value);
}

function xValues(series, mode) {
  if (mode === "time") return series.timestamps;
  if (mode === "relative") {
    const origin = series.origin ?? series.timestamps[0] ?? 0;
    return series.timestamps.map((t) => t - origin);
  }
  return series.steps;
}

/**
 * Draw (or redraw) a line chart into ``figure`` (an element holding an <svg>).
 * series: [{label, color, steps, values, timestamps, origin?}]
 * options: {x: "step"|"time"|"relative", logY: bool, smoothing: 0..0.99,
 *   references: [{value, label, color?}]: dashed horizontal lines (alert thresholds, targets)
 *     in any CSS colour; the y range stretches to show them,
 *   markers: bool: a dot per point, for sparse series (a line through one point draws nothing)}
 */
export function lineChart(figure, series, options = {}) {
  const mode = options.x || "step";
  figure.dataset.kind = "line";
  figure.querySelector(".value-body")?.remove();
  const height = 220;
  const { svg, width } = blankSvg(figure, 260, height);
  const prepared = series.map((s) => {
    const xs = xValues(s, mode);
    const keep = s.values.map((v, i) => Number.isFinite(v) && (!options.logY || v > 0) && Number.isFinite(xs[i]));
    const pick = (arr) => arr.filter((_, i) => keep[i]);
    const ys = pick(s.values);
    return { ...s, xs: pick(xs), raw: ys, ys: smooth(ys, options.smoothing || 0) };
  });
  const all = prepared.filter((s) => s.xs.length);
  const references = (options.references || []).filter((r) => Number.isFinite(r.value) && (!options.logY || r.value > 0));
  if (!all.length) {
    svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "muted" }, svg).textContent = "no points to draw";
    return;
  }
  let [x0, x1] = [Math.min(...all.map((s) => Math.min(...s.xs))), Math.max(...all.map((s) => Math.max(...s.xs)))];
  const levels = references.map((r) => r.value);
  let [y0, y1] = [Math.min(...all.map((s) => Math.min(...s.raw)), ...levels), Math.max(...all.map((s) => Math.max(...s.raw)), ...levels)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.05 || 1; y0 -= pad; y1 += pad; }
  if (!options.logY) { const pad = (y1 - y0) * 0.04; y0 -= pad; y1 += pad; }
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = options.logY
    ? (y) => MARGIN.top + (1 - (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * plotH
    : (y) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;

  const grid = svgEl("g", { class: "grid" }, svg);
  const axis = svgEl("g", { class: "axis" }, svg);
  const yTicks = options.logY ? logTicks(y0, y1) : linearTicks(y0, y1, 5);
  for (const t of yTicks) {
    svgEl("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: sy(t), y2: sy(t) }, grid);
    svgEl("text", { x: MARGIN.left - 6, y: sy(t) + 3.5, "text-anchor": "end" }, axis).textContent = formatNumber(t);
  }
  for (const t of linearTicks(x0, x1, Math.max(2, Math.floor(plotW / 90)))) {
    svgEl("line", { x1: sx(t), x2: sx(t), y1: MARGIN.top, y2: height - MARGIN.bottom }, grid);
    svgEl("text", { x: sx(t), y: height - 8, "text-anchor": "middle" }, axis).textContent = formatX(t, mode);
  }
  svgEl("path", { d: `M${MARGIN.left},${MARGIN.top}V${height - MARGIN.bottom}H${width - MARGIN.right}`, fill: "none" }, axis);

  const line = (xs, ys) => xs.map((x, i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join("");
  for (const s of all) {
    if (options.smoothing) svgEl("path", { class: "raw", stroke: s.color, d: line(s.xs, s.raw) }, svg);
    const path = svgEl("path", { class: "series", stroke: s.color, d: line(s.xs, s.ys) }, svg);
    path.dataset.points = String(s.xs.length);
    path.dataset.label = s.label;
    if (options.markers) {
      const dots = svgEl("g", { class: "markers", fill: s.color }, svg);
      s.xs.forEach((x, i) => svgEl("circle", { cx: sx(x).toFixed(1), cy: sy(s.ys[i]).toFixed(1), r: 2.5 }, dots));
    }
  }
  drawReferences(svg, references, { sy, left: MARGIN.left, right: width - MARGIN.right });
  installHover(figure, svg, all, { sx, x0, x1, plotW, mode, height });
}

function drawReferences(svg, references, { sy, left, right }) {
  if (!references.length) return;
  const group = svgEl("g", { class: "references" }, svg);
  for (const ref of references) {
    const y = sy(ref.value).toFixed(1);
    const line = svgEl("line", { class: "reference", x1: left, x2: right, y1: y, y2: y, "stroke-dasharray": "6 4" }, group);
    line.style.stroke = ref.color || "var(--axis)";  // any CSS colour, var(--bad) included
    line.dataset.value = String(ref.value);
    line.dataset.label = ref.label || "";
    svgEl("title", {}, line).textContent = `${ref.label || "reference"}: ${formatNumber(ref.value)}`;
    if (ref.label) {
      const text = svgEl("text", { class: "reference-label", x: right - 4, y: Number(y) - 4, "text-anchor": "end" }, group);
      text.style.fill = ref.color || "var(--muted)";
      text.textContent = ref.label;
    }
  }
}

function installHover(figure, svg, all, geometry) {
  const cursor = svgEl("line", { class: "cursor", y1: MARGIN.top, y2: geometry.height - MARGIN.bottom, visibility: "hidden" }, svg);
  let tip = figure.querySelector(".tooltip");
  if (!tip) {
    tip = document.createElement("div");
    tip.className = "tooltip";
    tip.hidden = true;
    figure.appendChild(tip);
  }
  svg.onmouseleave = () => { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); };
  svg.onmousemove = (event) => {
    const box = svg.getBoundingClientRect();
    const scale = svg.viewBox.baseVal.width / box.width;
    const px = (event.clientX - box.left) * scale;
    const x = geometry.x0 + ((px - MARGIN.left) / geometry.plotW) * (geometry.x1 - geometry.x0);
    const lines = [];
    let at = null;
    for (const s of all) {
      let best = 0;
      for (let i = 1; i < s.xs.length; i++) if (Math.abs(s.xs[i] - x) < Math.abs(s.xs[best] - x)) best = i;
      at = at ?? s.xs[best];
      lines.push([s.color, s.label, s.ys[best], s.xs[best]]);
    }
    cursor.setAttribute("x1", geometry.sx(at));
    cursor.setAttribute("x2", geometry.sx(at));
    cursor.setAttribute("visibility", "visible");
    tip.replaceChildren();
    const head = document.createElement("div");
    head.className = "muted";
    head.textContent = `${geometry.mode} ${formatX(at, geometry.mode)}`;
    tip.appendChild(head);
    for (const [color, label, value] of lines) {
      const row = document.createElement("div");
      const swatch = document.createElement("i");
      swatch.className = "swatch";
      swatch.style.background = color;
      row.append(swatch, `${label}: ${formatNumber(value)}`);
      tip.appendChild(row);
    }
    tip.hidden = false;
    const left = (event.clientX - figure.getBoundingClientRect().left) + 14;
    tip.style.left = `${Math.min(left, figure.clientWidth - tip.offsetWidth - 4)}px`;
    tip.style.top = "34px";
  };
}

/**
 * A metric logged once per run: its value as text when there is one run, one bar per run when
 * several are compared (a line through a single point draws an empty frame).
 * bars: [{label, color, value, step}]
 */
export function valueChart(figure, bars) {
  figure.dataset.kind = bars.length === 1 ? "value" : "bars";
  const svg = figure.querySelector("svg");
  if (svg) svg.remove();
  figure.querySelector(".tooltip")?.remove();
  let body = figure.querySelector(".value-body");
  if (!body) {
    body = document.createElement("div");
    body.className = "value-body";
    figure.appendChild(body);
  }
  body.replaceChildren();
  if (bars.length === 1) {
    const value = document.createElement("div");
    value.className = "metric-value";
    value.textContent = formatNumber(bars[0].value);
    const note = document.createElement("div");
    note.className = "muted";
    note.textContent = `logged once, at step ${bars[0].step}`;
    body.append(value, note);
    return;
  }
  const finite = bars.map((b) => b.value).filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(0, ...finite);
  const span = hi - lo || 1;
  for (const bar of bars) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.dataset.label = bar.label;
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = bar.label;
    name.title = bar.label;
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("i");
    const value = Number.isFinite(bar.value) ? bar.value : 0;
    fill.style.left = `${((Math.min(0, value) - lo) / span) * 100}%`;
    fill.style.width = `${(Math.abs(value) / span) * 100}%`;
    fill.style.background = bar.color;
    track.appendChild(fill);
    const number = document.createElement("span");
    number.className = "num";
    number.textContent = formatNumber(bar.value);
    row.append(name, track, number);
    body.appendChild(row);
  }
}

/**
 * A scatter plot: one dot per point, numbers on a linear (or log) scale, text as ordered
 * categories (a param such as an optimizer's name), each dot titled with its label.
 * points: [{label, color, x, y}]; options: {xLabel, yLabel, logY}
 */
export function scatterChart(figure, points, options = {}) {
  figure.dataset.kind = "scatter";
  const height = 260;
  const { svg, width } = blankSvg(figure, 300, height);
  const shown = points.filter((p) => p.x !== undefined && p.x !== null && p.x !== "" && Number.isFinite(p.y) && (!options.logY || p.y > 0));
  if (!shown.length) {
    svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "muted" }, svg).textContent = "no runs have both values";
    return;
  }
  const numeric = shown.every((p) => typeof p.x === "number" && Number.isFinite(p.x));
  const cats = numeric ? [] : [...new Set(shown.map((p) => String(p.x)))].sort();
  let [x0, x1] = numeric ? [Math.min(...shown.map((p) => p.x)), Math.max(...shown.map((p) => p.x))] : [-0.5, cats.length - 0.5];
  let [y0, y1] = [Math.min(...shown.map((p) => p.y)), Math.max(...shown.map((p) => p.y))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.05 || 1; y0 -= pad; y1 += pad; }
  if (numeric) { const pad = (x1 - x0) * 0.05; x0 -= pad; x1 += pad; }
  if (!options.logY) { const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad; }
  const bottom = MARGIN.bottom + 14;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - bottom;
  const xOf = (x) => (numeric ? x : cats.indexOf(String(x)));
  const sx = (x) => MARGIN.left + ((xOf(x) - x0) / (x1 - x0)) * plotW;
  const sy = options.logY
    ? (y) => MARGIN.top + (1 - (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * plotH
    : (y) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const grid = svgEl("g", { class: "grid" }, svg);
  const axis = svgEl("g", { class: "axis" }, svg);
  for (const t of options.logY ? logTicks(y0, y1) : linearTicks(y0, y1, 5)) {
    svgEl("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: sy(t), y2: sy(t) }, grid);
    svgEl("text", { x: MARGIN.left - 6, y: sy(t) + 3.5, "text-anchor": "end" }, axis).textContent = formatNumber(t);
  }
  const xTicks = numeric ? linearTicks(x0, x1, Math.max(2, Math.floor(plotW / 90))) : cats;
  for (const t of xTicks) {
    svgEl("line", { x1: sx(t), x2: sx(t), y1: MARGIN.top, y2: height - bottom }, grid);
    svgEl("text", { x: sx(t), y: height - bottom + 16, "text-anchor": "middle" }, axis).textContent = numeric ? formatNumber(t) : String(t).slice(0, 14);
  }
  svgEl("path", { d: `M${MARGIN.left},${MARGIN.top}V${height - bottom}H${width - MARGIN.right}`, fill: "none" }, axis);
  svgEl("text", { x: MARGIN.left + plotW / 2, y: height - 4, "text-anchor": "middle", class: "axis-name" }, axis).textContent = options.xLabel || "";
  const middle = MARGIN.top + plotH / 2;
  svgEl("text", { x: 10, y: middle, transform: `rotate(-90 10 ${middle})`, "text-anchor": "middle", class: "axis-name" }, axis).textContent = options.yLabel || "";
  const dots = svgEl("g", { class: "dots" }, svg);
  for (const p of shown) {
    const dot = svgEl("circle", { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 5, fill: p.color }, dots);
    dot.dataset.label = p.label;
    svgEl("title", {}, dot).textContent = `${p.label}: ${options.xLabel || "x"} ${numeric ? formatNumber(p.x) : p.x}, ${options.yLabel || "y"} ${formatNumber(p.y)}`;
  }
}

/** A legend of coloured labels under a chart or plot. */
export function legend(container, items) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const { label, color } of items) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.append(swatch, label);
    box.appendChild(item);
  }
  container.appendChild(box);
}

/**
 * Parallel coordinates: one vertical axis per dimension, one polyline per run.
 * rows: [{label, color, values: {key: number|string}}]; dims: [{key, label}]
 * A dimension whose values are not all numbers is drawn as ordered categories. Axis labels are
 * cut to the room between axes (the full name is the label's tooltip) and, when axes are close,
 * set on two alternating lines so neighbours never overlap.
 */
export function parallelCoordinates(container, rows, dims) {
  const svg = container.querySelector("svg") || svgEl("svg", {}, container);
  svg.replaceChildren();
  const width = Math.max(400, container.clientWidth - 10);
  const height = 340;
  const spacing = dims.length > 1 ? (width - 120) / (dims.length - 1) : width - 120;
  const staggered = spacing < 110;
  const top = staggered ? 42 : 28;
  const bottom = 20;
  const maxChars = Math.max(4, Math.floor(((staggered ? 2 : 1) * spacing - 8) / 6.5));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const scales = dims.map((dim, index) => {
    const values = rows.map((r) => r.values[dim.key]).filter((v) => v !== undefined && v !== null && v !== "");
    const numeric = values.every((v) => typeof v === "number" && Number.isFinite(v));
    const x = 60 + index * spacing;
    if (numeric && values.length) {
      let lo = Math.min(...values);
      let hi = Math.max(...values);
      if (lo === hi) { lo -= 1; hi += 1; }
      return { x, numeric, lo, hi, y: (v) => top + (1 - (v - lo) / (hi - lo)) * (height - top - bottom) };
    }
    const cats = [...new Set(values.map(String))].sort();
    const y = (v) => top + (cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1)) * (height - top - bottom);
    return { x, numeric: false, cats, y };
  });
  rows.forEach((row) => {
    const points = [];
    dims.forEach((dim, i) => {
      const v = row.values[dim.key];
      if (v !== undefined && v !== null && v !== "") points.push([scales[i].x, scales[i].y(v)]);
    });
    const path = svgEl("path", { stroke: row.color, d: points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("") }, svg);
    svgEl("title", {}, path).textContent = row.label;
    path.dataset.label = row.label;
  });
  const cut = (text, room) => (text.length > room ? `${text.slice(0, room - 1)}…` : text);
  const axis = svgEl("g", { class: "axis" }, svg);
  dims.forEach((dim, i) => {
    const s = scales[i];
    svgEl("line", { x1: s.x, x2: s.x, y1: top, y2: height - bottom }, axis);
    const name = svgEl("text", { x: s.x, y: staggered && i % 2 ? 30 : 14, "text-anchor": "middle", class: "axis-name" }, axis);
    name.textContent = cut(dim.label, maxChars);
    svgEl("title", {}, name).textContent = dim.label;
    const labels = s.numeric ? [s.lo, (s.lo + s.hi) / 2, s.hi] : s.cats;
    for (const v of labels) {
      svgEl("text", { x: s.x - 5, y: s.y(v) + 3.5, "text-anchor": "end" }, axis).textContent = s.numeric ? formatNumber(v) : cut(String(v), 12);
    }
  });
}

/** Re-run ``draw`` when the element's width changes or the theme flips. */
export function redrawOnResize(element, draw) {
  let width = element.clientWidth;
  new ResizeObserver(() => {
    if (element.clientWidth !== width) { width = element.clientWidth; draw(); }
  }).observe(element);
}
