// The monitor page's charts: drift share, each quality metric and the alert thresholds over the
// monitor's checks. The page lists the charts (one <figure> each, captioned, so the page reads
// without JavaScript); this draws them with the shell's lineChart: time on x, a dot per check
// (checks are sparse), each rule's threshold as a dashed line.
import { PALETTE, legend, lineChart, redrawOnResize } from "../shell/charts.js";

const grid = document.getElementById("monitor-charts");

function draw(charts, figures) {
  charts.forEach((chart, index) => {
    const series = chart.series.map((s, i) => ({ ...s, color: PALETTE[i % PALETTE.length] }));
    lineChart(figures[index], series, { x: "time", markers: true, references: chart.references });
  });
}

if (grid) {
  const charts = JSON.parse(grid.dataset.charts);
  const figures = [...grid.querySelectorAll("figure.chart")];
  draw(charts, figures);
  charts.forEach((chart, index) => {  // says which line is labelled and which estimated
    legend(figures[index], chart.series.map((s, i) => ({ label: s.label, color: PALETTE[i % PALETTE.length] })));
  });
  redrawOnResize(grid, () => draw(charts, figures));
  document.addEventListener("opsloop:theme", () => draw(charts, figures));
  grid.dataset.chartsReady = "true";
}
