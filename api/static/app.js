// Ferry's web UI: a list of Runs, a start form, and a live view of one Run.
// Everything a Run shows (titles, commands, output, questions, numbers) may come from a
// DevBox or a webhook: it is always inserted escaped (esc) or as text, never as markup.
"use strict";
const $ = (s) => document.querySelector(s);
const TOKEN_KEY = "ferry-token";
let token = localStorage.getItem(TOKEN_KEY) || "";
let selected = null, stream = null, lastSeq = 0, streaming = false;

const headers = () => token ? {Authorization: "Bearer " + token} : {};

function esc(s) {
  return String(s ?? "").replace(/[&<>"'`]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;", "`": "&#96;"}[c]));
}
function num(n) { return Number.isFinite(n) ? String(n) : "?"; }
function safeUrl(u) { return /^https?:\/\//i.test(String(u || "")) ? esc(u) : "#"; }
function badge(s) { return `<span class="badge s-${esc(s)}">${esc(String(s).replace(/_/g, " "))}</span>`; }
function errText(body, status) {
  const d = body && body.detail;
  if (Array.isArray(d)) return d.map(e => `${e.loc.filter(x => x !== "body").join(".")}: ${e.msg}`).join("; ");
  return d || `HTTP ${status}`;
}

class Unauthorized extends Error {}

async function api(method, path, body) {
  const r = await fetch(path, {method, headers: {...headers(), "Content-Type": "application/json"},
                               body: body ? JSON.stringify(body) : undefined});
  const data = await r.json().catch(() => null);
  if (r.status === 401) { askToken(errText(data, r.status)); throw new Unauthorized(errText(data, r.status)); }
  if (!r.ok) throw new Error(errText(data, r.status));
  return data;
}

// ---------------------------------------------------------------- API token

function askToken(why) {
  const dialog = $("#login");
  $("#tokenbtn").hidden = false;
  $("#loginerr").textContent = token ? "That token was not accepted." : "";
  if (!dialog.open) { dialog.showModal(); $("#logintoken").focus(); }
}
$("#loginform").addEventListener("submit", () => {
  token = $("#logintoken").value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  $("#logintoken").value = "";
  refresh();
  if (selected) show(selected);
});
$("#logout").addEventListener("click", () => {
  token = ""; localStorage.removeItem(TOKEN_KEY); $("#login").close(); refresh();
});
$("#tokenbtn").addEventListener("click", () => askToken(""));

// Links to logs, diffs and files: fetched with the token (a plain link cannot send it) and
// shown as plain text or saved as a file — never rendered as a page.
document.addEventListener("click", async (e) => {
  const a = e.target.closest && e.target.closest("a[data-fetch]");
  if (!a) return;
  e.preventDefault();
  const r = await fetch(a.getAttribute("href"), {headers: headers()});
  if (r.status === 401) { askToken(""); return; }
  const data = await r.blob();
  const view = a.dataset.fetch === "view";
  const url = URL.createObjectURL(new Blob([data], {type: view ? "text/plain;charset=utf-8" : "application/octet-stream"}));
  if (view) { window.open(url, "_blank", "noopener"); }
  else {
    const save = document.createElement("a");
    save.href = url; save.download = a.getAttribute("href").split("/").pop(); save.click();
  }
  setTimeout(() => URL.revokeObjectURL(url), 60000);
});

// ---------------------------------------------------------------- the list

async function refresh() {
  try {
    const q = $("#filter").value ? `&status=${encodeURIComponent($("#filter").value)}` : "";
    const data = await api("GET", `/runs?limit=100${q}`);
    $("#conn").textContent = "";
    $("#runs").innerHTML = data.runs.map(r => `
      <div class="run ${r.id === selected ? "sel" : ""}" data-id="${esc(r.id)}">
        <div class="t">${badge(r.status)} ${esc(r.title)}</div>
        <div class="meta">${esc(r.id)} · ${esc(r.engine)} · ${esc(new Date(r.created_at).toLocaleString())}</div>
      </div>`).join("") || `<div class="empty">No Runs yet.</div>`;
    document.querySelectorAll(".run").forEach(el => el.onclick = () => show(el.dataset.id));
  } catch (e) { $("#conn").textContent = e.message; }
}

// ---------------------------------------------------------------- steps

function artifactUrl(path) {
  return `/runs/${encodeURIComponent(selected)}/artifacts/${String(path).split("/").map(encodeURIComponent).join("/")}`;
}

function stepHtml(s) {
  const p = s.payload || {};
  if (s.kind === "exec") {
    const mark = p.exit_code === 0 ? `<span class="ok">✓</span>` : `<span class="bad">✗ exit ${esc(num(p.exit_code))}</span>`;
    return `<div class="k">exec #${esc(num(p.index))} · ${esc(num(p.duration_ms))} ms</div><div><code>$ ${esc(p.command)}</code> ${mark}</div>
      ${p.output_excerpt ? `<pre>${esc(p.output_excerpt)}</pre>` : ""}
      ${p.output_path && p.output_bytes > 2048 ? `<a class="meta" href="${esc(artifactUrl(p.output_path))}" data-fetch="download">full output (${esc(num(p.output_bytes))} bytes)</a>` : ""}`;
  }
  if (s.kind === "launch_devbox")
    return `<div class="k">launch DevBox</div>${esc(p.name)} on ${esc(p.host)} (${esc(p.backend)}, ${esc(p.image || "no image")})`;
  if (s.kind === "message")
    return `<div class="k">${esc(p.role)} message</div><pre>${esc(p.text)}</pre>`;
  if (s.kind === "tool") {
    const mark = p.is_error ? `<span class="bad">✗</span>` : `<span class="ok">✓</span>`;
    return `<div class="k">tool ${esc(p.name)} ${p.exit_code !== undefined && p.exit_code !== null ? "· exit " + esc(num(p.exit_code)) : ""}</div>${mark} <code>${esc(JSON.stringify(p.input))}</code>
      ${p.output_excerpt ? `<pre>${esc(p.output_excerpt)}</pre>` : ""}`;
  }
  if (s.kind === "thought") return `<div class="k">thought</div><pre class="meta">${esc(p.text)}</pre>`;
  if (s.kind === "question")
    return `<div class="k">question</div>` + (p.questions || []).map(q => `<div>${esc(q.text)} <span class="meta">(${esc(q.kind)}${q.options && q.options.length ? ": " + esc(q.options.join(", ")) : ""})</span></div>`).join("");
  if (s.kind === "answer")
    return `<div class="k">answer${p.auto ? " (auto: " + esc(p.reason) + ")" : ""}</div><code>${esc(JSON.stringify(p.answers))}</code>`;
  if (s.kind === "ticket") return `<div class="k">ticket</div><a href="${safeUrl(p.url)}" rel="noopener noreferrer">${esc(p.title)}</a>`;
  if (s.kind === "workspace") return `<div class="k">workspace</div>${esc(p.repo)} @ ${esc(p.base_branch)} → <code>${esc(p.work_branch)}</code>`;
  if (s.kind === "review") return `<div class="k">review</div>${esc(p.action)} ${p.pr_url ? `<a href="${safeUrl(p.pr_url)}" rel="noopener noreferrer">${esc(p.pr_url)}</a>` : esc(p.message || "")}`;
  if (s.kind === "report_result")
    return `<div class="k">result</div>${badge(p.status)} ${esc(p.summary)}`;
  if (s.kind === "raw" && p.forged)
    return `<div class="k bad">forged event line (ignored)</div><pre>${esc(p.why)}: ${esc(p.raw)}</pre>`;
  return `<div class="k">${esc(s.kind)}</div><pre>${esc(JSON.stringify(p, null, 2))}</pre>`;
}

// ---------------------------------------------------------------- one Run

async function show(id) {
  selected = id;
  if (stream) stream.abort();
  refresh();
  let run;
  try { run = await api("GET", `/runs/${encodeURIComponent(id)}`); }
  catch (e) { $("#right").innerHTML = `<div class="err">${esc(e.message)}</div>`; return; }
  const rid = encodeURIComponent(run.id);
  const cost = run.usage && Number.isFinite(run.usage.cost_usd) && run.usage.cost_usd ? `· $${esc(run.usage.cost_usd.toFixed(4))}` : "";
  $("#right").innerHTML = `
    <h2 class="title">${esc(run.title)}</h2>
    <div class="meta">${esc(run.id)} · ${esc(run.engine)} · ${esc(run.mode)}
      · <a href="/runs/${rid}/logs" data-fetch="view" id="logslink">logs</a>
      · <a href="/runs/${rid}/diff" data-fetch="view" id="difflink">diff</a>
      · <a href="/runs/${rid}/artifacts" data-fetch="view">artifacts</a>
      ${cost}
      <span id="status">${badge(run.status)}</span>
      <button class="secondary small" id="cancel">Cancel</button></div>
    <div id="summary" class="meta"></div>
    <div id="steps"></div>
    <div id="questions"></div>
    <form id="say"><textarea id="saytext" placeholder="Message: steers a working Run (next turn), or follows up on a finished one while its DevBox is kept alive"></textarea>
      <div class="row"><button type="submit" class="secondary">Send message</button><span class="err" id="sayerr"></span></div></form>`;
  $("#say").onsubmit = async (e) => {
    e.preventDefault(); $("#sayerr").textContent = "";
    try {
      await api("POST", `/runs/${rid}/messages`, {text: $("#saytext").value});
      $("#saytext").value = "";
      if (!streaming) follow(id, lastSeq);
    } catch (err) { $("#sayerr").textContent = err.message; }
  };
  const finished = (st) => ["completed", "failed", "cancelled"].includes(st);
  if (finished(run.status)) $("#cancel").hidden = true;
  $("#cancel").onclick = async () => { try { await api("POST", `/runs/${rid}/cancel`); } catch (e) { $("#sayerr").textContent = e.message; } };
  lastSeq = 0;
  follow(id, 0);
}

function questionsForm(id, qs) {
  const box = $("#questions");
  box.innerHTML = "";
  if (!qs) return;
  const form = document.createElement("form");
  form.innerHTML = qs.questions.map((q, qi) => {
    const name = `q-${esc(q.id)}`;
    const isDef = (o) => Array.isArray(q.default) ? q.default.includes(o) : q.default === o;
    if (q.kind === "text")
      return `<fieldset><legend>${esc(q.text)}</legend><textarea name="${name}" data-q="${esc(q.id)}">${esc(q.default || "")}</textarea></fieldset>`;
    const type = q.kind === "multi" ? "checkbox" : "radio";
    const opts = q.options.map(o => `<label><input type="${type}" name="${name}" value="${esc(o)}" ${isDef(o) ? "checked" : ""}>${esc(o)}${isDef(o) ? ' <span class="meta">(recommended)</span>' : ""}</label>`).join("");
    const other = q.allow_other ? `<label><input type="${type}" name="${name}" value="__other__">Other: <input class="other" name="${name}-other"></label>` : "";
    return `<fieldset><legend>${esc(q.text)}</legend>${opts}${other}</fieldset>`;
  }).join("") + `<button type="submit">Answer</button> <span class="err" id="answererr"></span>`;
  form.onsubmit = async (e) => {
    e.preventDefault();
    const answers = {};
    for (const q of qs.questions) {
      const name = `q-${q.id}`;
      const field = (n) => [...form.elements].filter(el => el.name === n);
      if (q.kind === "text") { answers[q.id] = field(name)[0].value; continue; }
      const picked = field(name).filter(i => i.checked).map(i =>
        i.value === "__other__" ? {other: field(`${name}-other`)[0].value} : i.value);
      answers[q.id] = q.kind === "multi" ? picked : picked[0];
      if (answers[q.id] === undefined) delete answers[q.id];
    }
    try { await api("POST", `/runs/${encodeURIComponent(id)}/answers`, {answers}); box.innerHTML = ""; }
    catch (err) { form.querySelector("#answererr").textContent = err.message; }
  };
  box.appendChild(form);
}

async function follow(id, after) {
  // fetch-based SSE so the Authorization header can be sent.
  stream = new AbortController();
  streaming = true;
  let r;
  try {
    r = await fetch(`/runs/${encodeURIComponent(id)}/events?after=${after || 0}`,
                    {headers: headers(), signal: stream.signal});
  } catch { streaming = false; return; }
  if (r.status === 401) { streaming = false; askToken(""); return; }
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch { return; }
    if (chunk.done) { streaming = false; break; }
    buf += dec.decode(chunk.value, {stream: true});
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0 || (i = buf.indexOf("\r\n\r\n")) >= 0) {
      const block = buf.slice(0, i); buf = buf.slice(i + (buf[i] === "\r" ? 4 : 2));
      let ev = "message", data = "";
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) ev = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (!data || selected !== id) continue;
      const d = JSON.parse(data);
      if (ev === "step") {
        lastSeq = d.seq;
        const el = document.createElement("div");
        el.className = "step"; el.dataset.seq = String(d.seq); el.innerHTML = stepHtml(d);
        $("#steps").appendChild(el);
      } else if (ev === "status" || ev === "end") {
        $("#status").innerHTML = badge(d.status);
        if (d.status === "waiting_for_input") { const run = await api("GET", `/runs/${encodeURIComponent(id)}`); questionsForm(id, run.questions); }
        else if (ev === "status") questionsForm(id, null);
        if (ev === "end") {
          $("#cancel").hidden = true;
          const run = await api("GET", `/runs/${encodeURIComponent(id)}`); $("#summary").textContent = run.error || ""; refresh(); }
      }
    }
  }
}

$("#new").onsubmit = async (e) => {
  e.preventDefault();
  $("#formerr").textContent = "";
  const body = {instructions: $("#instructions").value, engine: $("#engine").value};
  if ($("#title").value.trim()) body.title = $("#title").value.trim();
  try { const run = await api("POST", "/runs", body); $("#instructions").value = ""; $("#title").value = ""; show(run.id); }
  catch (err) { $("#formerr").textContent = err.message; }
};
$("#filter").onchange = refresh;
refresh();
setInterval(() => { if (!$("#login").open) refresh(); }, 3000);
