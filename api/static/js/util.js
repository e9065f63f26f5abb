// Small helpers shared by every view. Anything a Run shows may come from a DevBox or a
// webhook: it is inserted only through esc() or as text, never as markup.
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function esc(s) {
  return String(s ?? "").replace(/[&<>"'`]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;", "`": "&#96;"}[c]));
}
export const num = (n) => Number.isFinite(n) ? String(n) : "?";
export function safeUrl(u) { return /^https?:\/\//i.test(String(u || "")) ? esc(u) : "#"; }

// Engines by the names people choose them by (who pays, for Claude Code).
export const ENGINES = [["script", "Script"], ["claude-code-plan", "Claude Code — Plan"],
  ["claude-code-api", "Claude Code — API credits"], ["claude-code", "Claude Code (either)"],
  ["codex", "Codex"], ["openai", "Built-in (OpenAI-compatible)"], ["auto", "auto"]];
export function engineOptions(selected) {
  return ENGINES.map(([v, l]) => `<option value="${v}" ${v === selected ? "selected" : ""}>${l}</option>`).join("");
}

export const STATUSES = ["pending", "in_progress", "waiting_for_input", "completed", "failed", "cancelled"];
export const FINISHED = new Set(["completed", "failed", "cancelled"]);
export const label = (s) => String(s ?? "").replace(/_/g, " ");
export function badge(s) {
  return `<span class="badge s-${esc(s)}" data-status="${esc(s)}">${esc(label(s))}</span>`;
}

export function ago(iso) {
  if (!iso) return "";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(s)) return "";
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
export const when = (iso) => iso ? new Date(iso).toLocaleString() : "";
export function money(usd) { return Number.isFinite(usd) ? `$${usd.toFixed(usd < 1 ? 4 : 2)}` : ""; }
export function tokens(n) { return !Number.isFinite(n) ? "?" : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n); }

export function errText(body, status) {
  const d = body && body.detail;
  if (Array.isArray(d)) return d.map(e => `${(e.loc || []).filter(x => x !== "body").join(".")}: ${e.msg}`).join("; ");
  return d || `HTTP ${status}`;
}

// A form's named fields as {name: value}; empty strings left out.
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") { if (el.checked) out[el.name] = true; continue; }
    const v = el.value.trim();
    if (v !== "") out[el.name] = v;
  }
  return out;
}
