// Targets: the worker hosts, their DevBox images and health, and the Runs on each.
import {$, ago, badge, esc} from "./util.js";
import {api} from "./api.js";

export async function targetsView(root) {
  root.innerHTML = `<div class="toolbar"><h2>Targets</h2></div><div class="err" id="terr" role="alert"></div><div id="targets"></div>`;
  try {
    const [targets, runs] = await Promise.all([api("GET", "/targets"), api("GET", "/runs?limit=200")]);
    $("#targets").innerHTML = targets.length ? targets.map(t => {
      const mine = runs.runs.filter(r => r.target === t.host);
      const active = mine.filter(r => ["pending", "in_progress", "waiting_for_input"].includes(r.status));
      return `<section class="panel target"><h3>${esc(t.host)} ${t.healthy ? `<span class="badge s-completed">healthy</span>` : `<span class="badge s-failed">not seen lately</span>`}</h3>
        <dl class="facts">${Object.entries(t).filter(([k]) => !["host", "healthy"].includes(k)).map(([k, v]) =>
          `<div class="${String(v).length > 40 ? "wide" : ""}"><dt>${esc(k.replace(/_/g, " "))}</dt><dd>${esc(k === "seen_at" ? ago(v) : Array.isArray(v) ? v.join(", ") : typeof v === "object" && v ? JSON.stringify(v) : v)}</dd></div>`).join("")}
          <div><dt>Runs</dt><dd>${mine.length} (${active.length} active)</dd></div></dl>
        <ul class="cards">${active.slice(0, 10).map(r => `<li><a class="card" href="/ui/runs/${esc(encodeURIComponent(r.id))}" data-nav>${badge(r.status)} ${esc(r.title)}</a></li>`).join("")}</ul>
        <a href="/ui/runs?view=list&target=${encodeURIComponent(t.host)}" data-nav>All Runs on ${esc(t.host)}</a></section>`;
    }).join("") : `<div class="empty">No worker host has reported in. Start one with <code>ferry up</code> or <code>ferry worker</code>.</div>`;
  } catch (e) { $("#terr").textContent = e.message; }
  return null;
}
