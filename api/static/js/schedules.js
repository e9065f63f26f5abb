// Schedules: the list with next fire times, create and edit (cron with a preview of its
// next times, interval, or one time), pause / resume / run now / delete, and each
// schedule's recent Runs.
import {$, $$, ago, badge, engineOptions, esc, formValues, when} from "./util.js";
import {api} from "./api.js";
import {navigate} from "./main.js";

// Seconds (as the API returns durations) in the short form people type: 90 → 1m30s.
function compact(v) {
  if (typeof v !== "number") return String(v);
  let s = v, out = "";
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) { out += `${Math.floor(s / n)}${u}`; s %= n; }
  return out + (s || !out ? `${+s.toFixed(3)}s` : "");
}

function specText(spec) {
  if (!spec) return "";
  if (spec.cron) return `cron ${spec.cron} (${spec.time_zone || "UTC"})`;
  if (spec.interval) return `every ${compact(spec.interval.every)}`;
  if (spec.at) return `once at ${when(spec.at)}`;
  return JSON.stringify(spec);
}

// An ISO time as a datetime-local input's value (the browser's zone).
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A fire time in the schedule's own zone (cron) or the browser's, with the zone named.
function at(iso, zone) {
  try {
    return new Date(iso).toLocaleString(undefined, {timeZone: zone || undefined, timeZoneName: "short",
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  } catch { return when(iso); }
}

function scheduleForm(existing) {
  const s = existing || {spec: {}, run: {}};
  const kind = s.spec.cron ? "cron" : s.spec.at ? "at" : "interval";
  const r = s.run || {};
  return `<form id="schedform" class="newrun" novalidate>
    <div class="grid">
      <label class="field"><span>Name</span><input name="name" id="s-name" value="${esc(s.id || "")}" ${existing ? "disabled" : ""} placeholder="nightly-tests" pattern="[a-z0-9][a-z0-9-]{0,31}"></label>
      <label class="field"><span>When</span><select name="kind" id="s-kind">
        <option value="interval" ${kind === "interval" ? "selected" : ""}>every (interval)</option>
        <option value="cron" ${kind === "cron" ? "selected" : ""}>cron</option>
        <option value="at" ${kind === "at" ? "selected" : ""}>once</option></select></label>
      <label class="field" data-kind="interval"><span>Every</span><input name="every" id="s-every" value="${esc(s.spec.interval ? compact(s.spec.interval.every) : "")}" placeholder="1h, 30m, 1d"></label>
      <label class="field" data-kind="cron"><span>Cron</span><input name="cron" id="s-cron" value="${esc(s.spec.cron ?? "")}" placeholder="0 9 * * MON-FRI"></label>
      <label class="field" data-kind="cron"><span>Time zone</span><input name="time_zone" value="${esc(s.spec.time_zone ?? "UTC")}"></label>
      <label class="field" data-kind="at"><span>At (your local time)</span><input name="at" type="datetime-local" value="${esc(localInput(s.spec.at))}"></label>
    </div>
    <div id="cronpreview" class="meta" aria-live="polite"></div>
    <label class="field"><span>Instructions</span><textarea name="instructions" id="s-instructions" rows="4">${esc(r.instructions ?? "")}</textarea></label>
    <div class="grid">
      <label class="field"><span>Title</span><input name="title" value="${esc(r.title ?? "")}"></label>
      <label class="field"><span>Engine</span><select name="engine">${engineOptions(r.engine || "script")}</select></label>
      <label class="field"><span>Target (a scheduled Run runs unattended on one host)</span><select name="target" id="s-target">${r.target ? `<option>${esc(r.target)}</option>` : ""}</select></label>
      <label class="field"><span>Repository</span><input name="repo" value="${esc(r.repo ?? "")}"></label>
      <label class="field"><span>Branch</span><input name="branch" value="${esc(r.branch ?? "")}"></label>
      <label class="field"><span>Keep DevBox after</span><input name="keep_alive" value="${esc(r.keep_alive ?? "")}" placeholder="0s (autonomous)"></label>
      <label class="field"><span>Note</span><input name="note" value="${esc(s.note ?? "")}"></label>
    </div>
    <div class="row"><button type="submit" id="s-save">${existing ? "Save" : "Create schedule"}</button><span class="err" id="schederr" role="alert"></span></div>
  </form>`;
}

function bindScheduleForm(root, existing, done) {
  const form = $("#schedform", root);
  const showKind = () => { for (const el of $$("[data-kind]", form)) el.hidden = el.dataset.kind !== form.elements.kind.value; };
  showKind();
  form.elements.kind.onchange = showKind;
  api("GET", "/targets").then(ts => {
    const sel = form.elements.target, have = sel.value;
    sel.insertAdjacentHTML("beforeend", ts.filter(t => t.host !== have).map(t =>
      `<option value="${esc(t.host)}">${esc(t.host)}${t.healthy ? "" : " (not seen lately)"}</option>`).join(""));
  }).catch(() => {});
  let t = null;
  const preview = () => {
    clearTimeout(t);
    t = setTimeout(async () => {
      const box = $("#cronpreview");
      if (!box || !form.isConnected) return;
      const cron = form.elements.cron.value.trim(), zone = form.elements.time_zone.value || "UTC";
      if (!cron || form.elements.kind.value !== "cron") { box.textContent = ""; return; }
      try {
        const p = await api("GET", `/schedules/preview?${new URLSearchParams({cron, time_zone: zone, count: "3"})}`);
        box.textContent = "Next: " + p.next.map(t => at(t, zone)).join(" · ");
      } catch (e) { box.textContent = e.message; }
    }, 300);
  };
  form.elements.cron.oninput = preview; form.elements.time_zone.oninput = preview; preview();
  form.onsubmit = async (e) => {
    e.preventDefault();
    const v = formValues(form);
    const spec = v.kind === "cron" ? {cron: v.cron, time_zone: v.time_zone || "UTC"}
      : v.kind === "at" ? {at: v.at ? new Date(v.at).toISOString() : undefined}
      : {interval: {every: v.every}};
    // Editing keeps what the form does not show (image, model, budgets, env…): the
    // schedule's Run template, with the form's fields on top; a field emptied is unset.
    const base = existing ? Object.fromEntries(Object.entries(existing.run || {}).filter(([, x]) => x !== null
      && !(Array.isArray(x) && !x.length) && !(typeof x === "object" && !Array.isArray(x) && !Object.keys(x).length))) : {};
    const run = {...base, instructions: v.instructions, engine: v.engine};
    for (const k of ["title", "repo", "branch", "keep_alive", "target"]) { if (v[k]) run[k] = v[k]; else delete run[k]; }
    const err = !existing && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(v.name || "") ? "name: lower-case letters, digits and -, up to 32"
      : !v.instructions ? "instructions must not be empty"
      : v.kind === "interval" && !v.every ? "every: how often, e.g. 1h" : v.kind === "cron" && !v.cron ? "cron: an expression, e.g. 0 9 * * *"
      : v.kind === "at" && !v.at ? "at: pick a time" : !v.target ? "target: no worker host has reported in yet" : null;
    if (err) { $("#schederr").textContent = err; return; }
    try {
      const saved = existing ? await api("PATCH", `/schedules/${encodeURIComponent(existing.id)}`, {spec, run, ...(v.note ? {note: v.note} : {})})
                             : await api("POST", "/schedules", {name: v.name, spec, run, ...(v.note ? {note: v.note} : {})});
      done(saved);
    } catch (e2) { $("#schederr").textContent = e2.message; }
  };
}

async function act(id, what) {
  const path = `/schedules/${encodeURIComponent(id)}`;
  if (what === "delete") { if (!confirm(`Delete schedule ${id}? Its Runs stay.`)) return false; await api("DELETE", path); return true; }
  await api("POST", `${path}/${what}`);
  return true;
}

export async function schedulesView(root) {
  root.innerHTML = `<div class="toolbar"><h2>Schedules</h2><button id="newsched">New schedule</button></div>
    <div id="formbox" hidden></div><div class="err" id="listerr" role="alert"></div><div id="schedules"></div>`;
  const load = async () => {
    try {
      const list = await api("GET", "/schedules");
      $("#schedules").innerHTML = list.length ? `<table class="runlist"><thead><tr><th>Name</th><th>When</th><th>Next</th><th>Runs</th><th>State</th><th></th></tr></thead><tbody>${
        list.map(s => `<tr data-id="${esc(s.id)}"><td><a href="/ui/schedules/${esc(s.id)}" data-nav>${esc(s.id)}</a><div class="meta">${esc(s.run.title || s.run.instructions?.slice(0, 60) || "")}</div></td>
          <td>${esc(specText(s.spec))}</td><td>${esc(s.next_action_times[0] ? at(s.next_action_times[0], s.spec.cron ? s.spec.time_zone : null) : "—")}</td>
          <td>${esc(s.num_actions)}</td><td>${s.paused ? `<span class="badge s-cancelled">paused</span>` : s.finished ? "finished" : `<span class="badge s-completed">active</span>`}</td>
          <td class="acts"><button class="small secondary" data-act="${s.paused ? "unpause" : "pause"}">${s.paused ? "Resume" : "Pause"}</button>
            <button class="small secondary" data-act="trigger">Run now</button><button class="small danger" data-act="delete">Delete</button></td></tr>`).join("")}</tbody></table>`
        : `<div class="empty">No schedules yet.</div>`;
      for (const b of $$("[data-act]", root)) b.onclick = async () => {
        try { if (await act(b.closest("tr").dataset.id, b.dataset.act)) load(); } catch (e) { $("#listerr").textContent = e.message; }
      };
    } catch (e) { $("#listerr").textContent = e.message; }
  };
  $("#newsched").onclick = () => {
    const box = $("#formbox"); box.hidden = false; box.innerHTML = scheduleForm(null);
    bindScheduleForm(box, null, (s) => navigate(`/ui/schedules/${s.id}`));
    $("#s-name").focus();
  };
  await load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  return () => clearInterval(timer);
}

export async function scheduleView(root, [id]) {
  const sid = encodeURIComponent(id);
  let seen = "";
  const paint = async (force = true) => {
    let s;
    try { s = await api("GET", `/schedules/${sid}`); }
    catch (e) { root.innerHTML = `<div class="err" role="alert">${esc(e.message)}</div><a href="/ui/schedules" data-nav>Schedules</a>`; return; }
    const runs = (await api("GET", `/runs?schedule=${sid}&limit=20`).catch(() => ({runs: []}))).runs;
    const now = JSON.stringify([s, runs]);
    if (!force && now === seen) return;  // unchanged: focus and scroll stay
    seen = now;
    root.innerHTML = `<div class="crumbs"><a href="/ui/schedules" data-nav>Schedules</a> / ${esc(s.id)}</div>
      <div class="toolbar"><h2>${esc(s.id)}</h2> ${s.paused ? `<span class="badge s-cancelled" id="schedstate">paused</span>` : `<span class="badge s-completed" id="schedstate">active</span>`}
        <button class="secondary" data-act="${s.paused ? "unpause" : "pause"}">${s.paused ? "Resume" : "Pause"}</button>
        <button class="secondary" data-act="trigger">Run now</button>
        <button class="secondary" id="edit">Edit</button>
        <button class="danger" data-act="delete">Delete</button></div>
      <dl class="facts"><div><dt>When</dt><dd>${esc(specText(s.spec))}</dd></div>
        <div class="wide"><dt>Next</dt><dd>${s.next_action_times.map(t => esc(at(t, s.spec.cron ? s.spec.time_zone : null))).join(" · ") || "—"}</dd></div>
        <div><dt>Engine</dt><dd>${esc(s.run.engine || "script")}</dd></div>
        <div><dt>Target</dt><dd>${esc(s.run.target || "")}</dd></div>
        ${s.run.repo ? `<div class="wide"><dt>Repository</dt><dd>${esc(s.run.repo)}${s.run.branch ? " @ " + esc(s.run.branch) : ""}</dd></div>` : ""}
        <div class="wide"><dt>Task</dt><dd><pre>${esc(s.run.instructions || "")}</pre></dd></div>
        <div><dt>Runs started</dt><dd>${esc(s.num_actions)}</dd></div>${s.note ? `<div class="wide"><dt>Note</dt><dd>${esc(s.note)}</dd></div>` : ""}</dl>
      <div id="formbox" hidden></div><div class="err" id="listerr" role="alert"></div>
      <h3>Recent Runs</h3>
      <ul class="cards" id="schedruns">${runs.map(r => `<li><a class="card" href="/ui/runs/${esc(encodeURIComponent(r.id))}" data-nav>${badge(r.status)} ${esc(r.title)} <span class="meta">${esc(ago(r.created_at))}</span></a></li>`).join("") || `<li class="meta">No Runs yet.</li>`}</ul>`;
    for (const b of $$("[data-act]", root)) b.onclick = async () => {
      try { if (await act(s.id, b.dataset.act)) { if (b.dataset.act === "delete") navigate("/ui/schedules"); else paint(); } }
      catch (e) { $("#listerr").textContent = e.message; }
    };
    $("#edit").onclick = () => {
      const box = $("#formbox"); box.hidden = false; box.innerHTML = scheduleForm(s);
      bindScheduleForm(box, s, () => paint());
    };
  };
  await paint();
  const timer = setInterval(() => { if (!document.hidden && $("#formbox")?.hidden) paint(false); }, 5000);
  return () => clearInterval(timer);
}
