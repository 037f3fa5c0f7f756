// A pipeline run's page: while the run is RUNNING, draw it again every two seconds, so steps
// move from PENDING to their state as they finish.
const LIVE_INTERVAL_MS = 2000;
const status = document.getElementById("run-status");
if (status && status.textContent.trim() === "RUNNING") {
  setTimeout(() => window.location.reload(), LIVE_INTERVAL_MS);
}
