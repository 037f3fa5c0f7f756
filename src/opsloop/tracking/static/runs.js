// The runs table: enable "Compare selected" at two or more runs, and keep RUNNING rows live.
import { fetchRun, showRun } from "./live.js";

const LIVE_INTERVAL_MS = 5000;
const form = document.getElementById("compare-form");
const button = document.getElementById("compare-button");

function updateButton() {
  const checked = form.querySelectorAll('input[name="run"]:checked').length;
  button.disabled = checked < 2;
  button.textContent = checked >= 2 ? `Compare ${checked} runs` : "Compare selected";
}
form?.addEventListener("change", updateButton);
updateButton();

async function refreshRow(row) {
  const run = await fetchRun(row.dataset.runId);
  if (!run) return;
  row.dataset.status = run.info.status;
  showRun(run, row.querySelector('[data-field="status"]'), row);
}

async function pollRunning() {
  const running = [...document.querySelectorAll('tr[data-status="RUNNING"]')];
  if (!running.length) return;
  await Promise.all(running.map(refreshRow));
  setTimeout(pollRunning, LIVE_INTERVAL_MS);
}
setTimeout(pollRunning, LIVE_INTERVAL_MS);
