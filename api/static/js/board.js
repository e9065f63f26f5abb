// Runs: a board by status (a column per status, with counts) or a list, filtered by
// status, engine, target, schedule and title text; newest first; refreshed live.
import {$, STATUSES, engineOptions, ago, badge, esc, label} from "./util.js";
import {api} from "./api.js";

const POLL_MS = 2000;

function card(r) {
  return `<a class="card ${r.status === "waiting_for_input" ? "waiting" : ""}" href="/ui/runs/${esc(encodeURIComponent(r.id))}" data-nav data-id="${esc(r.id)}">
    <div class="t">${esc(r.title || "(untitled)")}</div>
    <div class="meta"><code>${esc(r.id.length > 14 ? r.id.slice(0, 13) + "…" : r.id)}</code> · ${esc(r.engine)}${r.target && r.target !== "any" ? " · " + esc(r.target) : ""}
      ${r.schedule_id ? ` · <span class="tag">schedule ${esc(r.schedule_id)}</span>` : ""} · <time datetime="${esc(r.created_at)}">${esc(ago(r.created_at))}</time></div></a>`;
}

export async function boardView(root, _params, loc) {
  const q = new URLSearchParams(loc.search);
  const mode = q.get("view") === "list" ? "list" : "board";
  root.innerHTML = `
    <div class="toolbar">
      <h2>Runs</h2>
      <div class="seg" role="group" aria-label="Layout">
        <a href="/ui/runs?view=board" data-nav class="${mode === "board" ? "on" : ""}">Board</a>
        <a href="/ui/runs?view=list" data-nav class="${mode === "list" ? "on" : ""}">List</a></div>
      <a class="button" href="/ui/new" data-nav>New Run</a>
    </div>
    <form class="filters" id="filters" role="search">
      <input id="q" name="q" type="search" placeholder="Search titles  ( / )" aria-label="Search titles">
      <select name="status" aria-label="Status"><option value="">any status</option>${STATUSES.map(s => `<option value="${s}">${label(s)}</option>`).join("")}</select>
      <select name="engine" aria-label="Engine"><option value="">any engine</option>${engineOptions()}</select>
      <select name="target" aria-label="Target"><option value="">any target</option></select>
      <select name="schedule" aria-label="Schedule"><option value="">any schedule</option></select>
    </form>
    <div class="err" id="boarderr" role="alert"></div>
    <div id="runs" class="${mode}"></div>`;
  const form = $("#filters");
  for (const [k, v] of q) if (form.elements[k]) form.elements[k].value = v;
  // Options that come from the API (targets, schedules) keep the URL's choice.
  Promise.all([api("GET", "/targets").catch(() => []), api("GET", "/schedules").catch(() => [])]).then(([ts, ss]) => {
    for (const [name, items] of [["target", ts.map(t => t.host)], ["schedule", ss.map(s => s.id)]]) {
      const sel = form.elements[name];
      sel.insertAdjacentHTML("beforeend", items.map(i => `<option>${esc(i)}</option>`).join(""));
      if (q.get(name)) sel.value = q.get(name);
    }
  });
  let runs = [], shownHtml = "";
  const paint = () => {
    const f = Object.fromEntries(new FormData(form));
    history.replaceState({}, "", "/ui/runs?" + new URLSearchParams({...(mode === "list" ? {view: "list"} : {}),
      ...Object.fromEntries(Object.entries(f).filter(([, v]) => v))}));
    const text = (f.q || "").toLowerCase();
    const shown = runs.filter(r => (!text || (r.title || "").toLowerCase().includes(text) || r.id.startsWith(text))
                                 && (!f.status || r.status === f.status));
    const box = $("#runs");
    if (!box) return;  // the page was left while a refresh was under way
    let html;
    if (mode === "list") {
      html = shown.length ? `<table class="runlist"><thead><tr><th>Status</th><th>Title</th><th>Engine</th><th>Target</th><th>Created</th></tr></thead><tbody>${
        shown.map(r => `<tr class="${r.status === "waiting_for_input" ? "waiting" : ""}"><td>${badge(r.status)}</td>
          <td><a href="/ui/runs/${esc(encodeURIComponent(r.id))}" data-nav>${esc(r.title || "(untitled)")}</a> <code class="meta">${esc(r.id.slice(0, 8))}</code></td>
          <td>${esc(r.engine)}</td><td>${esc(r.target || "")}</td><td>${esc(ago(r.created_at))}</td></tr>`).join("")}</tbody></table>`
        : `<div class="empty">No Runs match. <a href="/ui/new" data-nav>Start one</a>.</div>`;
    } else {
    const statuses = f.status ? [f.status] : STATUSES;
    html = statuses.map(s => {
      const col = shown.filter(r => r.status === s);
      return `<section class="col" data-status="${s}"><h3>${badge(s)} <span class="count">${col.length}</span></h3>
        ${col.map(card).join("") || `<div class="meta none">none</div>`}</section>`;
    }).join("");
    }
    // Unchanged: left alone, so focus and hover stay where they are. Changed: the Run
    // that had the focus gets it back.
    if (html === shownHtml) return;
    const focused = box.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    box.innerHTML = shownHtml = html;
    if (focused) box.querySelector(`a[href="${CSS.escape(focused)}"]`)?.focus();
  };
  const load = async () => {
    const f = Object.fromEntries(new FormData(form));
    const params = new URLSearchParams({limit: "200"});
    for (const k of ["engine", "target", "schedule"]) if (f[k]) params.set(k, f[k]);
    try {
      runs = (await api("GET", `/runs?${params}`)).runs;
      if (!$("#boarderr")) return;
      $("#boarderr").textContent = "";
      paint();
    } catch (e) { if ($("#boarderr")) $("#boarderr").textContent = e.message; }
  };
  form.addEventListener("input", (e) => { if (e.target.name === "q" || e.target.name === "status") paint(); else load(); });
  form.addEventListener("submit", (e) => e.preventDefault());
  await load();
  const timer = setInterval(() => { if (!document.hidden && !$("#login").open) load(); }, POLL_MS);
  return () => clearInterval(timer);
}
