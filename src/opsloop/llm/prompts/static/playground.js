// The playground: the (edited) template is rendered by the server (/api/prompt-renders, the
// registry's own sandbox), sent from the browser to the LLM gateway's /v1/chat/completions with
// the user's own session (the cookie, plus the page's CSRF token on writes), the answer shown as
// it streams in, and the copy saved back as the prompt's next version on request.
const root = document.getElementById("playground");
const form = document.getElementById("playground-form");
const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
const baseConfig = JSON.parse(root.dataset.config || "{}");
const $ = (id) => document.getElementById(id);
const HOW_TO_MOUNT = "start the server with routes: opsloop server --gateway-config gateway.yaml " +
  "(the file's format: opsloop gateway --help).";

function headers() {
  const sent = { "content-type": "application/json" };
  if (csrf) sent["x-csrf-token"] = csrf;
  return sent;
}

async function errorBody(response) {
  // opsloop's {"error": {"code", "message", "details"}} and OpenAI's {"error": {"message", ...}}.
  try {
    const body = await response.json();
    return body.error || { message: JSON.stringify(body) };
  } catch {
    return { message: `${response.status} ${response.statusText}` };
  }
}

function template() {
  const kind = form.querySelector('input[name="kind"]').value;
  if (kind === "text") return { text: form.querySelector('textarea[name="text"]').value };
  const messages = [];
  for (const row of form.querySelectorAll(".message-row")) {
    const content = row.querySelector("textarea").value;
    if (content.trim()) messages.push({ role: row.querySelector("select").value, content });
  }
  return { messages };
}

function variables() {
  const values = {};
  for (const input of form.querySelectorAll("input[data-variable]")) {
    values[input.dataset.variable] = input.value;
  }
  return values;
}

function addVariables(names) {
  // Variables an edit of the template brought in: one more input each.
  const box = $("variables");
  $("no-variables")?.remove();
  const known = new Set([...box.querySelectorAll("input[data-variable]")].map((i) => i.dataset.variable));
  for (const name of names.filter((n) => !known.has(n))) {
    const label = document.createElement("label");
    label.className = "variable";
    const input = document.createElement("input");
    input.name = "var";
    input.dataset.variable = name;
    input.spellcheck = false;
    label.append(`${name} `, input);
    box.append(label);
  }
}

function params() {
  const chosen = {};
  const temperature = $("temperature").value;
  const maxTokens = $("max-tokens").value;
  if (temperature !== "") chosen.temperature = Number(temperature);
  if (maxTokens !== "") chosen.max_tokens = Number(maxTokens);
  return chosen;
}

async function loadRoutes() {
  const status = $("gateway-status");
  let response;
  try {
    response = await fetch("/v1/models", { credentials: "same-origin" });
  } catch (error) {
    status.textContent = `Cannot reach the gateway: ${error}`;
    return;
  }
  if (response.status === 404) {
    status.textContent = `This server has no LLM gateway at /v1: ${HOW_TO_MOUNT}`;
    return;
  }
  if (!response.ok) {
    status.textContent = `The gateway did not list its routes: ${(await errorBody(response)).message}`;
    return;
  }
  const routes = (await response.json()).data || [];
  if (!routes.length) {
    status.textContent = `The LLM gateway has no routes yet: ${HOW_TO_MOUNT}`;
    return;
  }
  const select = $("route");
  select.replaceChildren(...routes.map((route) => new Option(route.id, route.id)));
  if (routes.some((route) => route.id === baseConfig.model)) select.value = baseConfig.model;
  select.disabled = false;
  $("send").disabled = false;
  status.textContent = `${routes.length} route(s) on this server's gateway.`;
}

const milliseconds = (value) => `${Math.round(value)} ms`;

function showUsage(usage) {
  if (usage) $("stat-tokens").textContent = `${usage.prompt_tokens ?? "?"} / ${usage.completion_tokens ?? "?"}`;
}

async function readStream(response, started) {
  // Server-sent events: "data: {chunk}" blocks, ending with "data: [DONE]".
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let first = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        const data = line.startsWith("data:") ? line.slice(5).trim() : "";
        if (!data || data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) $("send-error").textContent = chunk.error.message;
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) {
          if (first === null) {
            first = performance.now();
            $("stat-first").textContent = milliseconds(first - started);
          }
          $("answer").textContent += text;
        }
        showUsage(chunk.usage);
      }
    }
  }
}

async function send(event) {
  event.preventDefault();
  for (const id of ["answer", "send-error", "stat-route", "stat-tokens", "stat-first", "stat-latency"]) {
    $(id).textContent = "";
  }
  $("send").disabled = true;
  try {
    const rendered = await fetch("/api/prompt-renders", {
      method: "POST", headers: headers(), body: JSON.stringify({ ...template(), variables: variables() }),
    });
    if (!rendered.ok) {
      const error = await errorBody(rendered);
      if (error.details?.missing) addVariables(error.details.missing);
      $("send-error").textContent = error.message;
      return;
    }
    const { messages } = await rendered.json();
    const stream = $("stream").checked;
    const body = { model: $("route").value, messages, stream, ...params() };
    if (stream) body.stream_options = { include_usage: true };
    const started = performance.now();
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body),
    });
    if (!response.ok) {
      $("send-error").textContent = (await errorBody(response)).message;
      return;
    }
    const target = response.headers.get("x-opsloop-target");
    $("stat-route").textContent = body.model + (target ? ` → ${target}` : "");
    if (stream) {
      await readStream(response, started);
    } else {
      const answer = await response.json();
      const message = answer.choices?.[0]?.message || {};
      $("answer").textContent = message.content ?? JSON.stringify(message.tool_calls ?? message);
      showUsage(answer.usage);
    }
    $("stat-latency").textContent = milliseconds(performance.now() - started);
  } catch (error) {
    $("send-error").textContent = `The request failed: ${error}`;
  } finally {
    $("send").disabled = $("route").disabled;
  }
}

async function save() {
  // The copy as it stands, with the chosen route and parameters over the version's config.
  const result = $("save-result");
  const config = { ...baseConfig, ...params() };
  if ($("route").value) config.model = $("route").value;
  const body = { ...template(), config, message: $("save-message").value.trim() || null };
  const response = await fetch(`/api/prompts/${encodeURIComponent(root.dataset.name)}/versions`, {
    method: "POST", headers: headers(), body: JSON.stringify(body),
  });
  result.replaceChildren();
  if (!response.ok) {
    result.className = "error-message";
    result.textContent = (await errorBody(response)).message;
    return;
  }
  const saved = await response.json();
  result.className = "";
  const link = document.createElement("a");
  link.href = `/prompts/${encodeURIComponent(saved.name)}#v${saved.version}`;
  link.textContent = `version ${saved.version}`;
  result.append(response.status === 201 ? "Saved as " : "Nothing changed: it is ", link, ".");
}

form.addEventListener("submit", send);
$("save")?.addEventListener("click", save);
loadRoutes();
