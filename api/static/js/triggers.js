// Triggers: webhooks that start Runs. The list with each hook's URL and filter, create
// (the secret is shown only here, when chosen), delete, and a signed test delivery.
import {$, $$, engineOptions, esc, formValues} from "./util.js";
import {api} from "./api.js";

async function sign(secret, body) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), {name: "HMAC", hash: "SHA-256"}, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return "sha256=" + [...mac].map(b => b.toString(16).padStart(2, "0")).join("");
}

export async function triggersView(root) {
  root.innerHTML = `<div class="toolbar"><h2>Triggers</h2></div>
    <details class="panel"><summary>New trigger</summary>
      <form id="trigform" class="newrun" novalidate><div class="grid">
        <label class="field"><span>Name</span><input name="name" id="t-name" placeholder="github-issues"></label>
        <label class="field"><span>Secret (8+ characters, shared with the sender)</span><input name="secret" id="t-secret" type="password" autocomplete="new-password"></label>
        <label class="field"><span>Engine</span><select name="engine">${engineOptions("script")}</select></label>
        <label class="field"><span>Target (the host its Runs run on)</span><select name="target" id="t-target"></select></label>
        <label class="field"><span>Repository</span><input name="repo"></label>
        <label class="field"><span>Branch</span><input name="branch"></label>
        <label class="field"><span>Title (placeholders allowed)</span><input name="title" placeholder="Issue {{payload.issue.number}}"></label>
        <label class="field"><span>Keep DevBox after</span><input name="keep_alive" placeholder="30m (default)"></label>
        <label class="field"><span>Header filter</span><input name="header" placeholder="X-GitHub-Event=issues"></label>
        <label class="field"><span>Payload filter</span><input name="payload" placeholder="action=opened"></label></div>
        <label class="field"><span>Instructions (<code>{{payload.issue.title}}</code> is filled in from the delivery)</span><textarea name="instructions" id="t-instructions" rows="3"></textarea></label>
        <div class="row"><button type="submit">Create trigger</button><span class="err" id="trigerr" role="alert"></span></div></form></details>
    <div class="err" id="listerr" role="alert"></div><div id="triggers"></div>`;
  const load = async () => {
    const list = await api("GET", "/triggers").catch(e => { $("#listerr").textContent = e.message; return []; });
    $("#triggers").innerHTML = list.length ? list.map(t => `<section class="panel" data-name="${esc(t.name)}">
      <h3>${esc(t.name)}</h3><div>Webhook URL: <code>${esc(location.origin + t.hook_url)}</code></div>
      <div class="meta">filter: ${esc(JSON.stringify(t.filter))} · engine ${esc(t.run.engine || "default")}</div>
      <details><summary>Test delivery</summary><div class="grid">
        <label class="field"><span>Secret</span><input type="password" class="tsecret" autocomplete="off"></label>
        <label class="field"><span>Body (JSON)</span><textarea class="tbody" rows="3">{"action": "opened", "issue": {"title": "test"}}</textarea></label></div>
        <button class="small secondary" data-test>Send test delivery</button> <span class="tresult" role="status"></span></details>
      <button class="small danger" data-del>Delete</button></section>`).join("") : `<div class="empty">No triggers yet.</div>`;
    for (const s of $$("section[data-name]", root)) {
      const name = s.dataset.name;
      s.querySelector("[data-del]").onclick = async () => {
        if (!confirm(`Delete trigger ${name}?`)) return;
        try { await api("DELETE", `/triggers/${encodeURIComponent(name)}`); load(); } catch (e) { $("#listerr").textContent = e.message; }
      };
      s.querySelector("[data-test]").onclick = async () => {
        const body = s.querySelector(".tbody").value;
        const out = s.querySelector(".tresult");
        try {
          const r = await fetch(`/hooks/${encodeURIComponent(name)}`, {method: "POST", body,
            headers: {"Content-Type": "application/json", "X-Hub-Signature-256": await sign(s.querySelector(".tsecret").value, body)}});
          const d = await r.json().catch(() => ({}));
          out.innerHTML = r.ok ? (d.started ? `started <a href="/ui/runs/${esc(encodeURIComponent(d.run_id))}" data-nav>${esc(d.run_id)}</a>` : esc(d.reason || (d.duplicate ? "duplicate delivery: no new Run" : "not started")))
            : esc(d.detail ? JSON.stringify(d.detail) : `HTTP ${r.status}`);
        } catch (e) { out.textContent = e.message; }
      };
    }
  };
  $("#trigform").onsubmit = async (e) => {
    e.preventDefault();
    const v = formValues(e.target);
    const pair = (s) => s && s.includes("=") ? {[s.slice(0, s.indexOf("=")).trim()]: s.slice(s.indexOf("=") + 1).trim()} : {};
    const run = {instructions: v.instructions, engine: v.engine};
    for (const k of ["repo", "branch", "title", "keep_alive", "target"]) if (v[k]) run[k] = v[k];
    try {
      await api("POST", "/triggers", {name: v.name, secret: v.secret, run, filter: {headers: pair(v.header), payload: pair(v.payload)}});
      e.target.reset(); $("#trigerr").textContent = ""; load();
    } catch (err) { $("#trigerr").textContent = err.message; }
  };
  api("GET", "/targets").then(ts => {
    $("#t-target").innerHTML = ts.map(t => `<option value="${esc(t.host)}">${esc(t.host)}${t.healthy ? "" : " (not seen lately)"}</option>`).join("");
  }).catch(() => {});
  await load();
  return null;
}
