// How each timeline step reads: commands with their output, tool calls with their inputs
// as fields (not raw JSON), messages, thoughts, file changes, questions and answers.
import {esc, num, safeUrl, badge, money} from "./util.js";

function fields(obj) {
  if (obj === null || obj === undefined) return "";
  if (typeof obj !== "object") return `<pre>${esc(String(obj))}</pre>`;
  const rows = Object.entries(obj).map(([k, v]) => {
    const text = typeof v === "string" ? v : JSON.stringify(v, null, 2);
    const long = text.length > 80 || text.includes("\n");
    return `<div class="kv"><span class="key">${esc(k)}</span>${long ? `<pre>${esc(text)}</pre>` : `<code>${esc(text)}</code>`}</div>`;
  });
  return rows.join("");
}

function summaryOfInput(input) {
  if (!input || typeof input !== "object") return esc(String(input ?? "")).slice(0, 120);
  const first = input.command ?? input.cmd ?? input.file_path ?? input.path ?? input.pattern ?? input.url ?? input.query
    ?? Object.values(input).find(v => typeof v === "string");
  return esc(String(first ?? "").replace(/\s+/g, " ").slice(0, 140));
}

export function stepHtml(s, artifactUrl) {
  const p = s.payload || {};
  switch (s.kind) {
    case "exec": {
      const ok = p.exit_code === 0;
      const out = p.output_excerpt ? `<pre class="out">${esc(p.output_excerpt)}</pre>` : "";
      const full = p.output_path && p.output_bytes > 2048
        ? `<a class="meta" href="${esc(artifactUrl(p.output_path))}" data-fetch="download">full output (${esc(num(p.output_bytes))} bytes)</a>` : "";
      return `<details class="exec" ${ok && !p.output_excerpt ? "" : "open"}><summary><span class="k">exec #${esc(num(p.index))}</span>
        <code>$ ${esc(p.command)}</code> ${ok ? `<span class="ok">✓</span>` : `<span class="bad">✗ exit ${esc(num(p.exit_code))}</span>`}
        <span class="meta">${esc(num(p.duration_ms))} ms</span></summary>${out}${full}</details>`;
    }
    case "launch_devbox":
      return `<span class="k">launch DevBox</span> ${esc(p.name)} on <b>${esc(p.host)}</b> <span class="meta">(${esc(p.backend)}, ${esc(p.image || "no image")}${p.warm ? ", warm" : ""})</span>`;
    case "message":
      return `<span class="k">${esc(p.role || "agent")} message</span><div class="msg">${esc(p.text)}</div>`;
    case "thought":
      return `<details class="thought"><summary><span class="k">thought</span> <span class="meta">${esc(String(p.text || "").slice(0, 120))}</span></summary><pre class="meta">${esc(p.text)}</pre></details>`;
    case "tool": {
      const mark = p.is_error ? `<span class="bad">✗</span>` : `<span class="ok">✓</span>`;
      return `<details class="tool"><summary><span class="k">tool</span> <b>${esc(p.name)}</b> ${mark} <span class="meta">${summaryOfInput(p.input)}</span></summary>
        <div class="fields">${fields(p.input)}</div>${p.output_excerpt ? `<pre class="out">${esc(p.output_excerpt)}</pre>` : ""}</details>`;
    }
    case "file_change":
      return `<span class="k">file changes</span><ul class="changes">${(p.changes || []).map(c =>
        `<li><code>${esc(c.path ?? c.file ?? JSON.stringify(c))}</code> <span class="meta">${esc(c.kind ?? c.type ?? "")}</span></li>`).join("")}</ul>`;
    case "todo_list":
      return `<span class="k">plan</span><ul class="todo">${(p.items || []).map(i =>
        `<li class="${i.completed ? "done" : ""}">${i.completed ? "☑" : "☐"} ${esc(i.text ?? JSON.stringify(i))}</li>`).join("")}</ul>`;
    case "question":
      return `<span class="k">question</span>` + (p.questions || []).map(q =>
        `<div>${esc(q.text)} <span class="meta">(${esc(q.kind)}${q.options && q.options.length ? ": " + esc(q.options.join(", ")) : ""})</span></div>`).join("");
    case "answer":
      return `<span class="k">answer${p.auto ? " (auto: " + esc(p.reason) + ")" : ""}</span><div class="fields">${fields(p.answers)}</div>`;
    case "ticket":
      return `<span class="k">ticket</span> <a href="${safeUrl(p.url)}" rel="noopener noreferrer" target="_blank">${esc(p.title)}</a>`;
    case "workspace":
      return `<span class="k">workspace</span> ${esc(p.repo)} @ ${esc(p.base_branch)} → <code>${esc(p.work_branch)}</code>${p.restored_from ? ` <span class="meta">(restored from ${esc(p.restored_from)})</span>` : ""}`;
    case "review":
      return `<span class="k">review</span> ${esc(p.action)} ${p.branch ? `→ <code>${esc(p.branch)}</code>` : ""} ${p.pr_url ? `<a href="${safeUrl(p.pr_url)}" rel="noopener noreferrer" target="_blank">${esc(p.pr_url)}</a>` : esc(p.message || "")}`;
    case "report_result":
      return `<span class="k">result</span> ${badge(p.status)} ${esc(p.summary)}${p.usage && p.usage.cost_usd ? ` <span class="meta">${esc(money(p.usage.cost_usd))}</span>` : ""}`;
    case "egress_denied":
      return `<span class="k bad">network request refused</span> <code>${esc(p.host ?? "")}</code> <span class="meta">${esc(p.reason ?? "")}</span>`;
    case "raw":
      if (p.forged) return `<span class="k bad">forged event line (ignored)</span><pre>${esc(p.why)}: ${esc(p.raw)}</pre>`;
      return `<span class="k">raw</span><pre>${esc(JSON.stringify(p, null, 2))}</pre>`;
    default:
      return `<span class="k">${esc(s.kind)}</span><div class="fields">${fields(p)}</div>`;
  }
}
