// The runs table: enable "Compare selected" at two or more runs, keep RUNNING rows live, fold
// nested runs under their parent, and show the columns the user picked for this experiment
// (remembered in localStorage, per experiment).
// Applying a filter, a sort, a page or the flat/nested switch swaps the page's <main> in place
// instead of loading a new page: the URL changes as a navigation would (every view is still a
// deep link, and Back works), without re-parsing the shell's styles and scripts.
// Every listener is on the document, so it outlives the swapped elements.
import { fetchRun, showRun } from "./live.js";

const LIVE_INTERVAL_MS = 5000;
const table = () => document.getElementById("runs-table");

function updateButton() {
  const button = document.getElementById("compare-button");
  if (!button) return;
  const checked = document.querySelectorAll('#compare-form input[name="run"]:checked').length;
  button.disabled = checked < 2;
  button.textContent = checked >= 2 ? `Compare ${checked} runs` : "Compare selected";
}

async function refreshRow(row) {
  const run = await fetchRun(row.dataset.runId);
  if (!run) return;
  row.dataset.status = run.info.status;
  showRun(run, row.querySelector('[data-field="status"]'), row);
}

async function pollRunning() {
  const running = [...document.querySelectorAll('#runs-table tr[data-status="RUNNING"]')];
  if (running.length) await Promise.all(running.map(refreshRow));
  setTimeout(pollRunning, LIVE_INTERVAL_MS);
}

// -- remembered per experiment -------------------------------------------------------------------
function remembered(kind, fallback) {
  try {
    return JSON.parse(localStorage.getItem(`opsloop:${kind}:${table()?.dataset.experiment}`)) ?? fallback;
  } catch (e) {
    return fallback;  // storage disabled or a value from an older page
  }
}
function remember(kind, value) {
  try {
    localStorage.setItem(`opsloop:${kind}:${table()?.dataset.experiment}`, JSON.stringify(value));
  } catch (e) { /* storage disabled */ }
}

// -- nested runs ---------------------------------------------------------------------------------
const MAX_REMEMBERED = 500;

function showNesting() {
  const collapsed = new Set(remembered("runs-collapsed", []));
  for (const row of table().querySelectorAll("tr[data-ancestors]")) {
    row.hidden = row.dataset.ancestors.split(" ").some((id) => collapsed.has(id));
  }
  for (const toggle of table().querySelectorAll(".nest-toggle")) {
    const row = toggle.closest("tr");
    const open = !collapsed.has(row.dataset.runId);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.title = `${open ? "Hide" : "Show"} its ${row.dataset.children} nested runs`;
  }
}

function fold(change) {
  const collapsed = new Set(remembered("runs-collapsed", []));
  change(collapsed);
  remember("runs-collapsed", [...collapsed].slice(-MAX_REMEMBERED));
  showNesting();
}

// -- column picker -------------------------------------------------------------------------------
// Choices are stored as {"params.lr": false, "tags.team": true}: only what the user changed, so
// a key logged later shows by its group's default (params and metrics shown, tags hidden).
const sheet = new CSSStyleSheet();
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

function showColumns() {
  const choices = remembered("runs-columns", {});
  const isShown = (column) => choices[column] ?? !column.startsWith("tags.");
  const rules = [];
  let width = 0;
  [...table().tHead.rows[0].cells].forEach((th, index) => {
    const column = th.dataset.col;
    if (column && !isShown(column)) rules.push(`#runs-table tr > :nth-child(${index + 1}) { display: none; }`);
    else width += Number(th.getAttribute("width")) || 0;
  });
  sheet.replaceSync(rules.join("\n"));
  table().setAttribute("width", String(width));
  table().classList.add("columns-set");
  for (const box of document.querySelectorAll("#column-picker input[type=checkbox]")) box.checked = isShown(box.value);
}

function choose(values, shown) {
  const choices = remembered("runs-columns", {});
  for (const value of values) choices[value] = shown;
  remember("runs-columns", choices);
  showColumns();
}

// -- swapping the table in place -----------------------------------------------------------------
async function show(url, push = true) {
  let next;
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    next = page.querySelector("main");
    if (next?.querySelector("#runs-table")) document.title = page.title;
    else next = null;
  } catch (error) {
    next = null;
  }
  if (!next) {
    window.location.assign(url);  // not a runs table (signed out, an error page): go there
    return;
  }
  const openPicker = document.getElementById("column-picker")?.open;
  document.querySelector("main").replaceWith(document.adoptNode(next));
  if (openPicker) document.getElementById("column-picker").open = true;
  setUp();
  if (push) history.pushState(null, "", url);
}

const sameTable = (link) => link.origin === location.origin && link.pathname === location.pathname;

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id !== "filter-form") return;
  event.preventDefault();
  const query = new URLSearchParams(new FormData(form));
  for (const [key, value] of [...query]) if (!value) query.delete(key);
  show(`${form.action}?${query}`);
});

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (link && link.closest("main") && sameTable(link) && !event.ctrlKey && !event.metaKey && !event.shiftKey && event.button === 0) {
    event.preventDefault();
    show(link.href);
    return;
  }
  const toggle = event.target.closest(".nest-toggle");
  if (toggle) {
    const id = toggle.closest("tr").dataset.runId;
    fold((collapsed) => (collapsed.has(id) ? collapsed.delete(id) : collapsed.add(id)));
    return;
  }
  if (event.target.id === "collapse-all") {
    const parents = [...table().querySelectorAll("tr[data-children]")].map((row) => row.dataset.runId);
    fold((collapsed) => {
      const open = parents.some((id) => !collapsed.has(id));
      for (const id of parents) (open ? collapsed.add(id) : collapsed.delete(id));
      event.target.textContent = open ? "Expand all" : "Collapse all";
    });
    return;
  }
  const group = event.target.closest("#column-picker button[data-all], #column-picker button[data-none]");
  if (group) {
    const name = group.dataset.all ?? group.dataset.none;
    const boxes = document.querySelectorAll(`#column-picker fieldset[data-group="${name}"] input`);
    choose([...boxes].map((box) => box.value), group.dataset.all !== undefined);
  }
});

document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.closest?.("#column-picker")) choose([box.value], box.checked);
  else if (box.name === "run") updateButton();
});

window.addEventListener("popstate", () => show(location.href, false));

function setUp() {
  if (!table()) return;
  showColumns();
  showNesting();
  updateButton();
}

setUp();
setTimeout(pollRunning, LIVE_INTERVAL_MS);
