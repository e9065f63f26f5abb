// One Run at its own URL: header (status, engine, model, target, times, tokens, cost,
// budgets, links), the live timeline with the running command's output, questions,
// messages, and the review tab (diff, artifacts, accept / request changes / reject).
import {$, $$, FINISHED, badge, duration, esc, money, safeUrl, tokens, when} from "./util.js";
import {api, authHeaders, events, text} from "./api.js";
import {stepHtml} from "./steps.js";
import {renderDiff} from "./diff.js";

export async function runView(root, [id, tab], loc) {
  const rid = encodeURIComponent(id);
  const abort = new AbortController();
  const artifactUrl = (path) => `/runs/${rid}/artifacts/${String(path).split("/").map(encodeURIComponent).join("/")}`;
  let run;
  try { run = await api("GET", `/runs/${rid}`); }
  catch (e) { root.innerHTML = `<div class="err" role="alert">${esc(e.message)}</div><a href="/ui/runs" data-nav>All Runs</a>`; return null; }
  document.title = `${run.title} · Ferry`;
  root.innerHTML = `
    <div class="crumbs"><a href="/ui/runs" data-nav>Runs</a> / <code>${esc(id)}</code></div>
    <div id="head"></div>
    <nav class="tabs" aria-label="Run sections">
      <a href="/ui/runs/${rid}" data-nav class="${tab ? "" : "on"}" id="tab-timeline">Timeline</a>
      <a href="/ui/runs/${rid}/review" data-nav class="${tab === "review" ? "on" : ""}" id="tab-review">Review</a>
      <a href="/ui/runs/${rid}/output" data-nav class="${tab === "output" ? "on" : ""}" id="tab-output">Logs</a>
    </nav>
    <div id="pane"></div>`;
  const paintHead = (r) => {
    run = r;
    const u = r.usage || {}, b = r.budgets || {};
    const turns = (r.turn_usage || []).length;
    const used = [
      b.max_turns ? `turns ${turns} / ${b.max_turns}` : "",
      b.max_cost_usd ? `cost ${money(u.cost_usd || 0)} / ${money(b.max_cost_usd)}` : "",
      b.max_duration_seconds ? `time ${duration(r.duration_seconds || 0)} / ${duration(b.max_duration_seconds)}` : "",
    ].filter(Boolean).join(" · ");
    const tui = document.body.dataset.temporalui;
    const wfUrl = tui ? `${tui}/namespaces/${encodeURIComponent(document.body.dataset.namespace || "default")}/workflows/${encodeURIComponent(r.temporal_workflow_id)}` : "";
    const ws = r.workspace;
    $("#head").innerHTML = `
      <div class="runhead ${r.status === "waiting_for_input" ? "waiting" : ""}">
        <div class="titlerow"><h2 class="title" id="runtitle">${esc(r.title)}</h2>
          ${FINISHED.has(r.status) ? "" : `<button class="link small" id="rename" aria-label="Rename">rename</button>`}
          <span id="status">${badge(r.status)}</span></div>
        <dl class="facts">
          <div><dt>Engine</dt><dd>${esc(r.engine_used || r.engine)}${r.engine_used && r.engine !== r.engine_used ? ` <span class="meta">(${esc(r.engine)})</span>` : ""}</dd></div>
          ${r.model ? `<div><dt>Model</dt><dd>${esc(r.model)}</dd></div>` : ""}
          <div><dt>Mode</dt><dd>${esc(r.mode)}</dd></div>
          <div><dt>Target</dt><dd>${esc(r.target || r.target_requested || "any")}</dd></div>
          <div><dt>Created</dt><dd>${esc(when(r.created_at))}</dd></div>
          <div><dt>Duration</dt><dd>${esc(duration(r.duration_seconds) || "—")}</dd></div>
          <div><dt>Tokens</dt><dd id="tokens">${esc(tokens(u.input_tokens))} in · ${esc(tokens(u.output_tokens))} out</dd></div>
          <div><dt>Cost</dt><dd id="cost">${esc(money(u.cost_usd || 0))}</dd></div>
          ${used ? `<div><dt>Budgets</dt><dd>${esc(used)}</dd></div>` : ""}
          ${ws ? `<div class="wide"><dt>Repository</dt><dd>${esc(ws.repo)} @ ${esc(ws.base_branch)} → <code>${esc(ws.work_branch)}</code>${ws.restored_from ? ` <span class="meta">restored from ${esc(ws.restored_from)}</span>` : ""}</dd></div>`
                 : r.repo ? `<div class="wide"><dt>Repository</dt><dd>${esc(r.repo)}${r.branch ? " @ " + esc(r.branch) : ""}</dd></div>` : ""}
          ${r.ticket_url ? `<div class="wide"><dt>Ticket</dt><dd><a href="${safeUrl(r.ticket_url)}" target="_blank" rel="noopener noreferrer">${esc(r.ticket_title || r.ticket_url)}</a></dd></div>` : ""}
          ${r.accepted ? `<div class="wide"><dt>Accepted</dt><dd id="accepted">branch <code>${esc(r.accepted.branch)}</code> · ${esc(r.accepted.commit.slice(0, 12))} · ${r.accepted.pushed ? "pushed" : "not pushed"}${r.accepted.pr_url ? ` · <a href="${safeUrl(r.accepted.pr_url)}" target="_blank" rel="noopener noreferrer">pull request</a>` : ""}</dd></div>` : ""}
          ${r.schedule_id ? `<div><dt>Schedule</dt><dd><a href="/ui/schedules/${esc(r.schedule_id)}" data-nav>${esc(r.schedule_id)}</a></dd></div>` : ""}
          ${r.from_run ? `<div><dt>From</dt><dd><a href="/ui/runs/${esc(encodeURIComponent(r.from_run))}" data-nav>${esc(r.from_run)}</a></dd></div>` : ""}
        </dl>
        <div class="actions">
          ${wfUrl ? `<a href="${esc(wfUrl)}" target="_blank" rel="noopener noreferrer" id="temporal-link">Temporal UI ↗</a>` : ""}
          <a href="/ui/runs/${rid}/output" data-nav>Logs</a>
          <a href="/ui/new?from=${rid}" data-nav>Continue in a new Run</a>
          ${FINISHED.has(r.status) ? "" : `<button class="danger small" id="cancel">Cancel Run</button>`}
        </div>
        ${r.error ? `<div class="err" id="runerror">${esc(r.error)}</div>` : ""}
        ${r.summary ? `<div class="summary">${esc(r.summary)}</div>` : ""}
        ${r.devbox_note ? `<div class="meta">${esc(r.devbox_note)}</div>` : ""}
      </div>`;
    document.title = `${r.title} · Ferry`;
    if ($("#rename")) $("#rename").onclick = async () => {
      const title = prompt("New title", r.title);
      if (title && title.trim()) { try { paintHead(await api("PATCH", `/runs/${rid}`, {title})); } catch (e) { alert(e.message); } }
    };
    const c = $("#cancel");
    if (c) c.onclick = async () => {
      if (!confirm("Cancel this Run? Its DevBox is removed.")) return;
      try { paintHead(await api("POST", `/runs/${rid}/cancel`)); } catch (e) { alert(e.message); }
    };
  };
  paintHead(run);
  const refreshHead = async () => {
    try { const r = await api("GET", `/runs/${rid}`); if ($("#head")) paintHead(r); return r; }
    catch { return null; /* next time */ }
  };
  const pane = $("#pane");
  if (tab === "review") await reviewPane(pane, run, rid, artifactUrl, paintHead);
  else if (tab === "output") logsPane(pane, rid, abort.signal);
  else timelinePane(pane, run, rid, artifactUrl, abort.signal, refreshHead);
  return () => { abort.abort(); document.title = "Ferry"; };
}

// ----------------------------------------------------------------- the timeline

function timelinePane(pane, run, rid, artifactUrl, signal, refreshHead) {
  pane.innerHTML = `
    <ol id="steps" class="steps" aria-live="polite"></ol>
    <div id="live" class="live" hidden><div class="k">running <code id="livecmd"></code></div><pre id="liveout"></pre></div>
    <div id="questions"></div>
    <p id="saygone" class="meta" hidden>This Run's DevBox is gone: <a href="/ui/new?from=${rid}" data-nav>continue in a new Run</a> (from its last checkpoint).</p>
    <form id="say" class="say"><label for="saytext" class="meta">Message — steers a working Run at its next turn, or follows up on a finished one while its DevBox is kept${(run.engine_used || run.engine) === "script" ? ". For the script engine a message is commands to run" : ""}</label>
      <textarea id="saytext" rows="3"></textarea>
      <div class="row"><button type="submit" class="secondary">Send message</button><span class="err" id="sayerr" role="alert"></span><span class="meta" id="sayok" role="status"></span></div></form>`;
  let lastSeq = 0, following = false, liveIndex = null;
  const follow = async () => {
    if (following) return;
    following = true;
    try {
      await events(`/runs/${rid}/events?after=${lastSeq}`, async (ev, d) => {
        if (ev === "step") {
          if (d.seq <= lastSeq) return;
          lastSeq = d.seq;
          const li = document.createElement("li");
          li.className = `step k-${d.kind}`; li.dataset.seq = String(d.seq);
          li.innerHTML = stepHtml(d, artifactUrl);
          $("#steps").appendChild(li);
          if (d.kind === "exec" && d.payload && d.payload.index === liveIndex) { $("#live").hidden = true; liveIndex = null; }
          if (d.kind === "report_result" || d.kind === "review") refreshHead();
        } else if (ev === "output") {
          if (d.done) { $("#live").hidden = true; liveIndex = null; return; }
          liveIndex = d.index;
          $("#live").hidden = false;
          $("#livecmd").textContent = d.command;
          const pre = $("#liveout");
          const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.textContent = (d.tail_start ? `[… ${d.tail_start} earlier bytes …]\n` : "") + d.tail;
          if (atEnd) pre.scrollTop = pre.scrollHeight;
        } else if (ev === "status" || ev === "end") {
          $("#status").innerHTML = badge(d.status);
          if (d.status !== "in_progress") { $("#live").hidden = true; liveIndex = null; }
          if (d.status === "waiting_for_input") {
            const r = await api("GET", `/runs/${rid}`);
            questionsForm(rid, r.questions);
          } else questionsForm(rid, null);
          const r = await refreshHead();
          if (r) showSay(r);
        }
      }, signal);
    } finally { following = false; }
  };
  const sayable = (r) => !FINISHED.has(r.status) || (r.keep_alive_until && new Date(r.keep_alive_until) > new Date());
  const showSay = (r) => { if (!$("#say")) return; $("#say").hidden = !sayable(r); $("#saygone").hidden = sayable(r); };
  showSay(run);
  $("#saytext").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("#say").requestSubmit(); }
  });
  $("#say").onsubmit = async (e) => {
    e.preventDefault(); $("#sayerr").textContent = "";
    try {
      await api("POST", `/runs/${rid}/messages`, {text: $("#saytext").value});
      $("#saytext").value = "";
      $("#sayerr").textContent = "";
      $("#sayok").textContent = "Sent: the agent gets it at its next turn.";
      follow();
      await settle(rid, refreshHead);
    } catch (err) { $("#sayerr").textContent = err.message; }
  };
  follow();
}

// An action (message, review) is taken before the workflow has moved on: re-read the Run
// until its status changes (or a few seconds pass), so the page does not show the old one.
async function settle(rid, refresh, from = "completed") {
  for (let i = 0; i < 10; i++) {
    await new Promise(r => setTimeout(r, 400));
    const r = await refresh();
    if (!r || r.status !== from) return r;
  }
  return null;
}

function questionsForm(rid, qs) {
  const box = $("#questions");
  if (!box) return;
  box.innerHTML = "";
  if (!qs) return;
  const form = document.createElement("form");
  form.className = "questions";
  form.innerHTML = `<h3>The agent asks</h3>` + qs.questions.map((q) => {
    const name = `q-${esc(q.id)}`;
    const isDef = (o) => Array.isArray(q.default) ? q.default.includes(o) : q.default === o;
    if (q.kind === "text")
      return `<fieldset><legend>${esc(q.text)}</legend><textarea name="${name}" data-q="${esc(q.id)}">${esc(q.default || "")}</textarea></fieldset>`;
    const type = q.kind === "multi" ? "checkbox" : "radio";
    const opts = q.options.map(o => `<label><input type="${type}" name="${name}" value="${esc(o)}" ${isDef(o) ? "checked" : ""}>${esc(o)}${isDef(o) ? ' <span class="meta">(recommended)</span>' : ""}</label>`).join("");
    const other = q.allow_other ? `<label><input type="${type}" name="${name}" value="__other__">Other: <input class="other" name="${name}-other" aria-label="Other answer"></label>` : "";
    return `<fieldset><legend>${esc(q.text)}</legend>${opts}${other}</fieldset>`;
  }).join("") + `<button type="submit">Answer</button> <span class="err" id="answererr" role="alert"></span>`;
  form.onsubmit = async (e) => {
    e.preventDefault();
    const answers = {};
    const field = (n) => [...form.elements].filter(el => el.name === n);
    for (const q of qs.questions) {
      const name = `q-${q.id}`;
      if (q.kind === "text") { answers[q.id] = field(name)[0].value; continue; }
      const picked = field(name).filter(i => i.checked).map(i =>
        i.value === "__other__" ? {other: field(`${name}-other`)[0].value} : i.value);
      answers[q.id] = q.kind === "multi" ? picked : picked[0];
      if (answers[q.id] === undefined) delete answers[q.id];
    }
    try { await api("POST", `/runs/${rid}/answers`, {answers}); box.innerHTML = ""; }
    catch (err) { form.querySelector("#answererr").textContent = err.message; }
  };
  box.appendChild(form);
  form.querySelector("input, textarea")?.focus({preventScroll: true});
}

// ----------------------------------------------------------------- logs

async function logsPane(pane, rid, signal) {
  pane.innerHTML = `<div class="row"><a href="/runs/${rid}/logs" data-fetch="download" data-name="logs.txt" class="button secondary">Download</a></div><pre id="logs" class="logs">loading…</pre>`;
  // Refreshed while the Run works (the running command's output is at the end).
  while (!signal.aborted) {
    const pre = $("#logs");
    if (!pre) return;
    try {
      const body = await (await text(`/runs/${rid}/logs`)).text();
      const atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 8;
      pre.textContent = body || "(no command has run yet)";
      if (atEnd && body) window.scrollTo(0, document.body.scrollHeight);
    } catch (e) { pre.textContent = e.message; }
    const r = await api("GET", `/runs/${rid}`).catch(() => null);
    if (!r || FINISHED.has(r.status)) return;
    await new Promise(res => setTimeout(res, 2000));
  }
}

// ----------------------------------------------------------------- review

async function reviewPane(pane, run, rid, artifactUrl, paintHead) {
  const attempts = (run.attempts || []).map(a => a.attempt);
  const q = new URLSearchParams(location.search);
  const mode = q.get("layout") === "split" ? "split" : "unified";
  const attempt = +(q.get("attempt") || attempts[attempts.length - 1] || 0);
  const latest = attempts[attempts.length - 1];
  const canReview = run.status === "completed" && run.keep_alive_until && attempt === latest;
  pane.innerHTML = `
    <div class="toolbar">
      <label>Attempt <select id="attempt">${attempts.map(a => `<option ${a === attempt ? "selected" : ""}>${a}</option>`).join("")}</select></label>
      <div class="seg" role="group" aria-label="Diff layout">
        <a href="?layout=unified&attempt=${attempt}" data-nav class="${mode === "unified" ? "on" : ""}" id="unified">Unified</a>
        <a href="?layout=split&attempt=${attempt}" data-nav class="${mode === "split" ? "on" : ""}" id="split">Side by side</a></div>
      <a href="/runs/${rid}/diff?attempt=${attempt}" data-fetch="download" data-name="${rid}-attempt-${attempt}.patch" class="meta">diff.patch</a>
    </div>
    <div id="diff"><div class="meta">loading…</div></div>
    <h3>Artifacts</h3><div id="artifacts"></div><div id="preview"></div>
    <section class="reviewbox" aria-label="Review">
      <h3>Review</h3>
      ${canReview ? "" : attempt !== latest && attempts.length ? `<p class="meta">This is attempt ${esc(attempt)}; review acts on the latest, <a href="?layout=${mode}&attempt=${latest}" data-nav>attempt ${esc(latest)}</a>.</p>`
        : `<p class="meta">A Run can be reviewed once it has completed, while its DevBox is kept.</p>`}
      <label for="comment" class="meta">Comment — request changes: what to change; reject &amp; retry: new instructions (empty: the same); accept: the commit message (optional)</label>
      <textarea id="comment" rows="3"></textarea>
      <div class="row">
        <button id="accept" ${canReview ? "" : "disabled"}>Accept</button>
        <button id="changes" class="secondary" ${canReview ? "" : "disabled"}>Request changes</button>
        <button id="reject" class="danger" ${canReview ? "" : "disabled"}>Reject &amp; retry</button>
      </div>
      <div id="reviewresult" role="status"></div><div class="err" id="reviewerr" role="alert"></div>
    </section>`;
  $("#attempt").onchange = (e) => { history.replaceState({}, "", `?layout=${mode}&attempt=${e.target.value}`); reviewPane(pane, run, rid, artifactUrl, paintHead); };
  if (!attempts.length) $("#diff").innerHTML = `<div class="empty">No results yet: the Run has not finished a turn.</div>`;
  else {
    try {
      const d = await api("GET", `/runs/${rid}/diff?format=json&attempt=${attempt}`);
      renderDiff($("#diff"), d.diff, d.files, mode);
    } catch (e) { $("#diff").innerHTML = `<div class="err">${esc(e.message)}</div>`; }
  }
  try {
    // This attempt's artifacts and the Run's summary; outputs, diffs and records have their
    // own views (timeline, diff, logs).
    const mine = `attempts/${attempt}/`;
    const list = (await api("GET", `/runs/${rid}/artifacts?limit=10000`)).artifacts.filter(a => {
      const p = String(a.path);
      return p.startsWith(mine) ? !/\/(diff\.patch|files\.json)$/.test(p)
        : !p.includes("/") && !["run.json", "result.json"].includes(p);
    });
    $("#artifacts").innerHTML = list.length ? `<ul class="artifacts">${list.map(a => `<li>
      <code>${esc(a.path)}</code> <span class="meta">${esc(a.size)} B · ${esc(a.content_type)}</span>
      ${/^(text\/|image\/(png|jpeg|gif|webp)|application\/json)/.test(a.content_type) ? `<button class="link small" data-preview="${esc(a.path)}" data-type="${esc(a.content_type)}">preview</button>` : ""}
      <a href="${esc(artifactUrl(a.path))}" data-fetch="download">download</a></li>`).join("")}</ul>` : `<div class="meta">none</div>`;
    for (const b of $$("[data-preview]")) b.onclick = () => preview(artifactUrl(b.dataset.preview), b.dataset.type);
  } catch (e) { $("#artifacts").textContent = e.message; }
  const act = async (action) => {
    $("#reviewerr").textContent = ""; $("#reviewresult").textContent = "working…";
    const message = $("#comment").value.trim();
    if (action === "reject" && !confirm("Reject this attempt? Its changes are discarded and a new attempt starts.")) {
      $("#reviewresult").textContent = ""; return;
    }
    if (action === "request_changes" && !message) { $("#reviewerr").textContent = "Write what to change first."; $("#reviewresult").textContent = ""; return; }
    try {
      let r = await api("POST", `/runs/${rid}/review`, {action, ...(message ? {message} : {})});
      if (action !== "accept") {
        for (const b of ["#accept", "#changes", "#reject"]) $(b).disabled = true;
        r = (await settle(rid, async () => api("GET", `/runs/${rid}`))) || r;
      }
      paintHead(r);
      $("#comment").value = "";
      $("#reviewresult").innerHTML = action === "accept" && r.accepted
        ? `Accepted: branch <code id="pushedbranch">${esc(r.accepted.branch)}</code> ${r.accepted.pushed ? "pushed" : "committed (not pushed)"}${r.accepted.pr_url ? ` · <a href="${safeUrl(r.accepted.pr_url)}" target="_blank" rel="noopener noreferrer">pull request</a>` : ""}`
        : action === "request_changes" ? `Changes requested: the agent is working on them (see the <a href="/ui/runs/${rid}" data-nav>timeline</a>).`
        : `Rejected: attempt ${esc(r.attempt)} started.`;
      if (action !== "accept") refreshWhenDone(pane, rid, artifactUrl, paintHead, r.step_count);
    } catch (e) { $("#reviewresult").textContent = ""; $("#reviewerr").textContent = e.message; }
  };
  $("#accept").onclick = () => act("accept");
  $("#changes").onclick = () => act("request_changes");
  $("#reject").onclick = () => act("reject");
}

// After request changes or reject: show the new results once the Run has finished them.
async function refreshWhenDone(pane, rid, artifactUrl, paintHead, stepsBefore) {
  const started = Date.now();
  // Done once seen working and then finished (or, if the work was too quick to be seen,
  // once it has added steps): the view the review answered with may already count some.
  let sawWorking = false;
  while (pane.isConnected && Date.now() - started < 30 * 60 * 1000) {
    await new Promise(r => setTimeout(r, 1500));
    let r;
    try { r = await api("GET", `/runs/${rid}`); } catch { continue; }
    if (!FINISHED.has(r.status)) { sawWorking = true; continue; }
    if (sawWorking || r.step_count > stepsBefore + 1) {
      if (!pane.isConnected) return;
      paintHead(r);
      history.replaceState({}, "", location.pathname + (location.search.includes("layout=split") ? "?layout=split" : ""));
      await reviewPane(pane, r, rid, artifactUrl, paintHead);
      $("#reviewresult").textContent = `Attempt ${r.attempt} is ready for review.`;
      return;
    }
  }
}

// A preview never renders DevBox data as a page: text goes in a <pre>, images only in the
// types the API serves as images (never SVG), through a blob URL.
async function preview(url, type) {
  const box = $("#preview");
  try {
    const r = await text(url);
    if (type.startsWith("image/")) {
      const blob = await r.blob();
      box.innerHTML = `<img alt="artifact preview" class="preview">`;
      box.querySelector("img").src = URL.createObjectURL(new Blob([blob], {type}));
    } else {
      const t = await r.text();
      box.innerHTML = `<pre class="preview"></pre>`;
      box.querySelector("pre").textContent = t.length > 200000 ? t.slice(0, 200000) + "\n[… preview cut …]" : t;
    }
  } catch (e) { box.textContent = e.message; }
}

// Downloads with the token (a plain link cannot send it), saved as files.
document.addEventListener("click", async (e) => {
  const a = e.target.closest && e.target.closest("a[data-fetch]");
  if (!a) return;
  e.preventDefault();
  const r = await fetch(a.getAttribute("href"), {headers: authHeaders()});
  if (!r.ok) return;
  const url = URL.createObjectURL(new Blob([await r.blob()], {type: "application/octet-stream"}));
  const save = document.createElement("a");
  save.href = url; save.download = a.dataset.name || a.getAttribute("href").split("?")[0].split("/").pop();
  save.click();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
});
