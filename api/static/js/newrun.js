// New Run: every field of `POST /runs`, checked here as the API would (its 422s are shown
// by field too), submitted with the button or Ctrl/Cmd+Enter.
import {$, esc, formValues} from "./util.js";
import {api, ApiError} from "./api.js";
import {navigate} from "./main.js";

const DURATION = /^\s*((\d+(\.\d+)?)\s*(ms|[wdhms]))+\s*$|^P(?!T?$)(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?(T(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$/i;
const CHECKS = {
  instructions: (v, all) => !v && !all.from_run ? "instructions must not be empty" : null,
  branch: (v) => v && (!/^[A-Za-z0-9._/-]+$/.test(v) || v.includes("..") || /^[-/]/.test(v)) ? "branch must be a plain git branch name" : null,
  model: (v) => v && !/^[A-Za-z0-9][A-Za-z0-9._:/@\[\]-]{0,199}$/.test(v) ? "model has characters a model name cannot have" : null,
  image: (v) => v && !/^[a-z0-9][a-z0-9._\/:@-]{0,254}$/i.test(v) ? "image must be a Docker image reference like ferry-devbox or ghcr.io/org/img:tag" : null,
  ticket_url: (v) => v && !/^https:\/\/[A-Za-z0-9.-]+(:\d+)?\/[A-Za-z0-9_.-]+\/([A-Za-z0-9_.-]+\/issues\/\d+|[^/]+\/_workitems\/edit\/\d+)\/?$/.test(v)
    ? "ticket URL must be a GitHub issue (…/owner/repo/issues/N) or an Azure work item (…/_workitems/edit/N)" : null,
  repo: (v) => v && v.startsWith("-") ? "repo must be a git URL or a path on the worker host" : null,
  max_turns: (v) => v && !(Number.isInteger(+v) && +v >= 1 && +v <= 10000) ? "max turns must be a whole number from 1 to 10000" : null,
  max_cost_usd: (v) => v && !(+v > 0 && +v <= 1e6) ? "max cost must be more than 0 dollars" : null,
  from_run: (v) => v && !/^[A-Za-z0-9][A-Za-z0-9_:-]{0,63}$/.test(v) ? "from_run must be a Run id" : null,
  env: (v) => {
    const bad = (v || "").split("\n").map(l => l.trim()).filter(Boolean)
      .find(l => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(l));
    return bad !== undefined ? `each line is NAME=value (not ${JSON.stringify(bad.slice(0, 40))})` : null;
  },
};
for (const d of ["max_duration", "turn_timeout", "keep_alive", "idle_timeout", "question_timeout"]) {
  CHECKS[d] = (v) => v && !DURATION.test(v) ? `${d.replace(/_/g, " ")}: use e.g. 30s, 15m, 2h, 7d or PT2S` : null;
}

const field = (name, labelText, input, hint = "") =>
  `<label class="field" data-field="${name}"><span>${labelText}</span>${input}${hint ? `<small class="meta">${hint}</small>` : ""}<small class="ferr" id="err-${name}" role="alert"></small></label>`;

// Errors may sit in a closed section: open it, focus the first invalid field, and say
// how many there are.
function showFirstError(form, count) {
  const slot = form.querySelector(".ferr:not(:empty)");
  if (!slot) return;
  const details = slot.closest("details");
  if (details) details.open = true;
  slot.closest(".field")?.querySelector("input, textarea, select")?.focus();
  $("#formerr").textContent = slot.textContent + (count > 1 ? ` (and ${count - 1} more above)` : "");
}

export async function newRunView(root, _params, loc) {
  const q = new URLSearchParams(loc.search);
  const priority = document.body.dataset.enginepriority || "claude-code,codex,openai";
  root.innerHTML = `
    <div class="toolbar"><h2>New Run</h2></div>
    <form id="newrun" class="newrun" novalidate>
      ${field("instructions", "Instructions", `<textarea name="instructions" id="instructions" rows="7" placeholder="What should the agent do? For the script engine: a shell script, one command per line."></textarea>`, "Ctrl+Enter starts the Run.")}
      <div class="grid">
        ${field("title", "Title", `<input name="title" id="title" maxlength="200" placeholder="From the instructions if empty">`)}
        ${field("engine", "Engine", `<select name="engine" id="engine"><option value="script">Script (shell commands)</option><option value="auto">auto</option><option value="claude-code-plan">Claude Code — Plan (subscription)</option><option value="claude-code-api">Claude Code — API credits</option><option value="claude-code">Claude Code (whichever the worker has)</option><option value="codex">Codex</option><option value="openai">Built-in (OpenAI-compatible)</option></select>`,
          `auto picks the first usable of ${esc(priority)} on the worker.`)}
        ${field("mode", "Mode", `<select name="mode"><option value="">interactive (asks questions)</option><option value="autonomous">autonomous (uses defaults)</option></select>`)}
        ${field("target", "Target", `<select name="target" id="target"><option value="">any healthy host</option></select>`)}
        ${field("model", "Model", `<input name="model" placeholder="engine default">`)}
        ${field("permission_mode", "Claude Code permissions", `<select name="permission_mode"><option value="">edit freely (default)</option><option value="plan">plan only: read, edit nothing</option><option value="acceptEdits">accept edits</option><option value="default">ask (default mode)</option></select>`)}
        ${field("effort", "Effort", `<select name="effort"><option value="">default</option><option>low</option><option>medium</option><option>high</option></select>`)}
        ${field("repo", "Repository", `<input name="repo" id="repo" placeholder="https://github.com/org/repo.git or a path on the host">`)}
        ${field("branch", "Branch", `<input name="branch" id="branch" placeholder="the repository's default">`)}
        ${field("ticket_url", "Ticket URL", `<input name="ticket_url" placeholder="https://github.com/org/repo/issues/42">`)}
        ${field("image", "DevBox image", `<input name="image" placeholder="the worker's default">`)}
      </div>
      <details><summary>Budgets and timeouts</summary><div class="grid">
        ${field("max_turns", "Max turns", `<input name="max_turns" inputmode="numeric">`)}
        ${field("max_cost_usd", "Max cost (USD)", `<input name="max_cost_usd" inputmode="decimal">`)}
        ${field("max_duration", "Max duration", `<input name="max_duration" placeholder="e.g. 2h">`)}
        ${field("turn_timeout", "Turn timeout", `<input name="turn_timeout" placeholder="e.g. 30m">`)}
        ${field("keep_alive", "Keep DevBox after", `<input name="keep_alive" placeholder="default 30m">`)}
        ${field("idle_timeout", "Hibernate when idle", `<input name="idle_timeout" placeholder="e.g. 10m">`)}
        ${field("question_timeout", "Question timeout", `<input name="question_timeout" placeholder="e.g. 1d">`)}
        ${field("on_timeout", "When a question times out", `<select name="on_timeout"><option value="">default</option><option value="use_defaults">use the defaults</option><option value="fail">fail the Run</option></select>`)}
      </div></details>
      <details><summary>Advanced</summary><div class="grid">
        ${field("network", "Network", `<select name="network"><option value="">gateway (default)</option><option>none</option><option>open</option></select>`)}
        ${field("from_run", "Continue from Run", `<input name="from_run" id="from_run" placeholder="Run id">`, "Copies that Run's spec and its last workspace checkpoint.")}
        <label class="check"><input type="checkbox" name="fresh"> fresh (ignore the checkpoint)</label>
        <label class="check"><input type="checkbox" name="run_as_root"> run commands as root</label>
        ${field("env", "Environment", `<textarea name="env" rows="3" placeholder="KEY=value, one per line (not for secrets)"></textarea>`)}
        ${field("artifacts", "Artifacts", `<textarea name="artifacts" rows="2" placeholder="workspace paths to keep, one per line"></textarea>`)}
      </div></details>
      <div class="row"><button type="submit" id="start">Start Run</button><span class="err" id="formerr" role="alert"></span></div>
    </form>`;
  const form = $("#newrun");
  if (q.get("from")) {
    form.elements.from_run.value = q.get("from");
    form.querySelector("details:last-of-type").open = true;
    form.elements.instructions.placeholder = `Empty: Run ${q.get("from")}'s instructions. Every field left empty is copied from it, and its workspace continues from its last checkpoint.`;
    form.elements.engine.value = "";
    form.elements.engine.insertAdjacentHTML("afterbegin", `<option value="">as Run ${esc(q.get("from"))}</option>`);
    form.elements.engine.value = "";
  }
  $("#instructions").focus();
  api("GET", "/targets").then(ts => {
    $("#target").insertAdjacentHTML("beforeend", ts.map(t =>
      `<option value="${esc(t.host)}">${esc(t.host)} — ${t.healthy ? "healthy" : "not seen lately"}</option>`).join(""));
  }).catch(() => {});
  // What this worker pool can run: engines no healthy host can run are shown, disabled,
  // with the reason (a missing credential or CLI).
  api("GET", "/engines").then(list => {
    for (const e of list) {
      const opt = [...form.elements.engine.options].find(o => o.value === e.name);
      if (!opt || e.available) continue;
      opt.disabled = true;
      opt.textContent += ` — unavailable: ${e.reason}`;
    }
  }).catch(() => {});
  $("#instructions").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const el of form.querySelectorAll(".ferr")) el.textContent = "";
    $("#formerr").textContent = "";
    const v = formValues(form);
    if (form.elements.instructions.value.trim() === "" && form.elements.instructions.value !== "") v.instructions = "";
    let bad = 0;
    for (const [name, check] of Object.entries(CHECKS)) {
      const msg = check(v[name], v);
      if (msg) { bad++; $(`#err-${name}`).textContent = msg; }
    }
    if (bad) { showFirstError(form, bad); return; }
    const body = {...v};
    if (body.engine === undefined && !body.from_run) body.engine = "script";
    for (const n of ["max_turns"]) if (body[n]) body[n] = +body[n];
    if (body.max_cost_usd) body.max_cost_usd = +body.max_cost_usd;
    if (body.env) {
      body.env = Object.fromEntries(body.env.split("\n").filter(l => l.trim()).map(l => {
        const i = l.indexOf("="); return [l.slice(0, i).trim(), l.slice(i + 1)];
      }));
    }
    if (body.artifacts) body.artifacts = body.artifacts.split("\n").map(s => s.trim()).filter(Boolean);
    $("#start").disabled = true;
    try {
      const run = await api("POST", "/runs", body);
      navigate(`/ui/runs/${run.id}`);
    } catch (err) {
      $("#formerr").textContent = err.message;
      if (err instanceof ApiError && Array.isArray(err.body?.detail)) {
        let n = 0;
        for (const d of err.body.detail) {
          const name = (d.loc || []).filter(x => x !== "body")[0];
          const slot = name && $(`#err-${name}`);
          if (slot) { slot.textContent = d.msg; n++; }
        }
        if (n) showFirstError(form, n);
      }
    } finally { const b = $("#start"); if (b) b.disabled = false; }
  });
}
