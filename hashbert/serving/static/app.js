// The demo page: one conversation at a time against /v1/sessions; no build step, no dependencies.
"use strict";

const state = { sessionId: null, apiKey: localStorage.getItem("hashbert-api-key") || "", k: 10 };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.apiKey) headers["X-API-Key"] = state.apiKey;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    $("key-form").hidden = false;
    throw new Error("this server needs an API key");
  }
  if (response.status === 204) return null;
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return data;
}

function showError(err) {
  $("error").textContent = err ? String(err.message || err) : "";
  $("error").hidden = !err;
}

function fmt(x) { return Number(x).toLocaleString(); }

async function loadFacts() {
  const info = await api("GET", "/v1/info");
  const idx = info.index;
  const bits = idx.n_bits ? `${idx.n_bits} bits` : "float vectors";
  const bytes = idx.bytes_per_response ? `${fmt(idx.bytes_per_response)} bytes/response` : "";
  $("facts").textContent = [`model ${idx.model_kind}${idx.is_hdr ? " (HDR)" : ""}`, bits,
                            `pool ${fmt(idx.pool_size)} responses`, bytes].filter(Boolean).join(" · ");
}

function addToLog(turn) {
  const li = document.createElement("li");
  li.className = turn.role;
  li.dataset.role = turn.role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = turn.role === "user" ? "you" : "bot";
  li.append(who, document.createTextNode(turn.text));
  $("log").append(li);
  $("log").scrollTop = $("log").scrollHeight;
}

function showCandidates(result) {
  const list = $("candidates");
  list.replaceChildren();
  for (const candidate of result.candidates) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "candidate";
    const text = document.createElement("span");
    text.textContent = candidate.text;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = candidate.score.toFixed(3);
    button.append(text, score);
    button.addEventListener("click", () => send(candidate.text, "bot"));
    li.append(button);
    list.append(li);
  }
  const t = result.timings_ms;
  $("timings").textContent = ["encode", "aggregate", "search", "rerank", "total"]
    .map((stage) => `${stage} ${t[stage].toFixed(1)} ms`).join(" · ");
}

async function newConversation() {
  if (state.sessionId) api("DELETE", `/v1/sessions/${state.sessionId}`).catch(() => {});
  const session = await api("POST", "/v1/sessions");
  state.sessionId = session.id;
  $("session").textContent = `session ${session.id.slice(0, 8)}`;
  $("log").replaceChildren();
  $("candidates").replaceChildren();
  $("timings").textContent = "";
}

async function send(text, role) {
  showError(null);
  try {
    if (!state.sessionId) await newConversation();
    const result = await api("POST", `/v1/sessions/${state.sessionId}/turns`, { text, role, k: state.k });
    addToLog(result.turn);
    if (role === "bot") {
      $("candidates").replaceChildren();  // the user speaks next; nothing to pick until then
      $("timings").textContent = "";
    } else {
      showCandidates(result);
    }
  } catch (err) {
    showError(err);
  }
}

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  send(text, "user");
});
$("new-conversation").addEventListener("click", () => newConversation().catch(showError));
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.apiKey = $("api-key").value;
  localStorage.setItem("hashbert-api-key", state.apiKey);
  $("key-form").hidden = true;
  start();
});

function start() {
  showError(null);
  loadFacts().then(newConversation).catch(showError);
}
start();
