// Shell behaviour shared by every page: the theme switch, "/" to focus the search box, and edits
// sent from a page to the REST API.
const root = document.documentElement;

document.getElementById("theme-toggle")?.addEventListener("click", () => {
  const next = root.dataset.theme === "dark" ? "light" : "dark";
  root.dataset.theme = next;
  try { localStorage.setItem("opsloop-theme", next); } catch (e) { /* storage disabled */ }
  document.dispatchEvent(new CustomEvent("opsloop:theme", { detail: next }));
});

document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
  if (event.key === "/" && !typing) {
    event.preventDefault();
    document.querySelector(".global-search input")?.focus();
  }
});

// -- MLflow's links -------------------------------------------------------------------------------
// The mlflow client prints its own UI's links ("View run at http://SERVER/#/experiments/E/runs/R").
// The browser keeps the fragment through the root's redirect; here it becomes opsloop's page for
// the same thing (under the same /w/NAME/ workspace prefix, if any), or stays put if unknown.
const MLFLOW_PAGES = [
  [/^\/experiments\/[^/]+\/runs\/([^/?]+)/, (run) => `runs/${run}`],
  [/^\/experiments\/([^/?]+)/, (experiment) => `experiments/${experiment}`],
  [/^\/models\/([^/?]+)\/versions\/([^/?]+)/, (name, version) => `models/${name}/versions/${version}`],
  [/^\/models\/([^/?]+)/, (name) => `models/${name}`],
  [/^\/models\/?$/, () => "models"],
  [/^\/(?:experiments\/?)?$/, () => "experiments"],
];

function mlflowPage(hash) {
  if (!hash.startsWith("#/")) return null;
  const path = hash.slice(1);
  for (const [pattern, page] of MLFLOW_PAGES) {
    const found = path.match(pattern);
    if (found) {
      try {
        return page(...found.slice(1).map((part) => encodeURIComponent(decodeURIComponent(part))));
      } catch (error) {
        return null; // a malformed escape ("%zz"): not a link the client printed
      }
    }
  }
  return null;
}

const mlflowTarget = mlflowPage(window.location.hash);
if (mlflowTarget) {
  const prefix = window.location.pathname.match(/^\/w\/[^/]+\//)?.[0] ?? "/";
  window.location.replace(prefix + mlflowTarget);
}

// -- writes from the page ------------------------------------------------------------------------
// Edits go through the REST API (so the role check and the audit log apply) with the session's
// CSRF token; the answer's message is shown when the server refuses.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content;

/** Send ``body`` as JSON; resolves to {ok, status, data, message}. */
export async function sendJson(method, url, body = undefined) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(url, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    return { ok: false, status: 0, data: null, message: `could not reach the server: ${error.message}` };
  }
  const data = await response.json().catch(() => null);
  const message = data?.error?.message ?? data?.message ?? (response.ok ? "" : `HTTP ${response.status}`);
  return { ok: response.ok, status: response.status, data, message };
}

// Declarative edit forms: <form data-api="/api/..." data-method="PATCH"> sends its fields as a
// JSON object (data-body="tags" wraps a key/value pair as {tags: {key: value}}) and reloads the
// page on success; a button with data-edit="FORM_ID" opens the form, [data-cancel] closes it.
function formBody(form) {
  const fields = Object.fromEntries(new FormData(form));
  delete fields.csrf_token;
  if (form.dataset.body === "tags") return { tags: { [fields.key ?? ""]: fields.value ?? "" } };
  return Object.keys(fields).length ? fields : undefined;
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  event.preventDefault();
  const error = form.querySelector(".edit-error");
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  const answer = await sendJson(form.dataset.method || "POST", form.dataset.api, formBody(form));
  buttons.forEach((b) => { b.disabled = false; });
  if (answer.ok) {
    window.location.reload();
    return;
  }
  if (error) {
    error.textContent = answer.message;
    error.hidden = false;
  }
});

document.addEventListener("click", (event) => {
  const opener = event.target.closest?.("[data-edit]");
  const cancel = event.target.closest?.("[data-cancel]");
  if (opener) {
    const form = document.getElementById(opener.dataset.edit);
    if (!form) return;
    form.hidden = false;
    opener.hidden = true;
    form.querySelector("input:not([type=hidden]), textarea")?.focus();
  } else if (cancel) {
    const form = cancel.closest("form");
    form.reset();
    form.hidden = true;
    form.querySelector(".edit-error")?.setAttribute("hidden", "");
    document.querySelector(`[data-edit="${form.id}"]`)?.removeAttribute("hidden");
  }
});
