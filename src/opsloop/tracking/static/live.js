// Live updates of a running run: fetch it again and refresh the status badge and metric cells.
import { formatNumber } from "../shell/charts.js";

export async function fetchRun(runId) {
  const response = await fetch(`/api/runs/${encodeURIComponent(runId)}`, { credentials: "same-origin" });
  return response.ok ? response.json() : null;
}

/** Show ``run``'s status on ``badge`` and its latest metrics in ``[data-metric]`` cells of ``root``. */
export function showRun(run, badge, root) {
  badge.textContent = run.info.status;
  badge.className = `badge ${run.info.status}`;
  for (const cell of root.querySelectorAll("[data-metric]")) {
    const value = run.data.metrics[cell.dataset.metric];
    if (value !== undefined) cell.textContent = formatNumber(value);
  }
}
