// A pipeline run's page: while the run is RUNNING, draw it again every two seconds, so steps
// move from PENDING to their state as they finish (and a retried step's attempts show as they
// end). The step logs a reader opened or closed stay so across those reloads.
const LIVE_INTERVAL_MS = 2000;
const status = document.getElementById("run-status");
const key = `opsloop.pipeline-logs:${window.location.pathname}`;

function remembered() {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "{}");
  } catch {
    return {};
  }
}

const open = remembered();
for (const details of document.querySelectorAll("details.step-logs[data-step]")) {
  const step = details.dataset.step;
  if (step in open) details.open = open[step];
  details.addEventListener("toggle", () => {
    const now = remembered();
    now[step] = details.open;
    try {
      sessionStorage.setItem(key, JSON.stringify(now));
    } catch {
      // storage full or refused: the page still works, it just forgets
    }
  });
}

if (status && status.textContent.trim() === "RUNNING") {
  setTimeout(() => window.location.reload(), LIVE_INTERVAL_MS);
}
