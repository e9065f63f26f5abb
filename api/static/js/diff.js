// The diff viewer: a unified diff (git's, as the API serves it) parsed into files and
// hunks, shown unified or side by side with line numbers and syntax highlighting.
import {esc} from "./util.js";
import {highlight, langOf} from "./highlight.js";

export function parseDiff(text) {
  const files = [];
  let file = null, hunk = null, oldNo = 0, newNo = 0;
  for (const line of String(text).split("\n")) {
    if (line.startsWith("diff --git ")) {
      const m = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      file = {path: m ? m[2] : line.slice(11), oldPath: m ? m[1] : null, hunks: [], meta: []};
      files.push(file); hunk = null; continue;
    }
    if (!file) continue;
    if (line.startsWith("@@")) {
      const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/.exec(line);
      oldNo = m ? +m[1] : 0; newNo = m ? +m[2] : 0;
      hunk = {header: line, lines: []}; file.hunks.push(hunk); continue;
    }
    if (!hunk) {
      if (line.startsWith("+++ ") || line.startsWith("--- ")) continue;
      if (line) file.meta.push(line);
      continue;
    }
    const t = line[0];
    if (t === "+") hunk.lines.push({t: "+", text: line.slice(1), newNo: newNo++});
    else if (t === "-") hunk.lines.push({t: "-", text: line.slice(1), oldNo: oldNo++});
    else if (t === " ") hunk.lines.push({t: " ", text: line.slice(1), oldNo: oldNo++, newNo: newNo++});
    else if (t === "\\") hunk.lines.push({t: "\\", text: line});
  }
  return files;
}

const cell = (n) => `<td class="ln">${n ?? ""}</td>`;

function unified(file, lang) {
  return file.hunks.map(h => `<tr class="hunk"><td colspan="3">${esc(h.header)}</td></tr>` +
    h.lines.map(l => `<tr class="d${l.t === "+" ? "add" : l.t === "-" ? "del" : l.t === "\\" ? "note" : "ctx"}">` +
      `${cell(l.oldNo)}${cell(l.newNo)}<td class="code"><span class="mark">${esc(l.t === "\\" ? "" : l.t)}</span>${highlight(l.text, lang)}</td></tr>`).join("")).join("");
}

// Side by side: deletions pair with the additions that follow them.
function split(file, lang) {
  const side = (l) => l ? `${cell(l.t === "+" ? l.newNo : l.oldNo)}<td class="code ${l.t === "+" ? "dadd" : l.t === "-" ? "ddel" : ""}">${highlight(l.text, lang)}</td>`
                        : `<td class="ln"></td><td class="code empty"></td>`;
  let out = "";
  for (const h of file.hunks) {
    out += `<tr class="hunk"><td colspan="4">${esc(h.header)}</td></tr>`;
    const lines = h.lines.filter(l => l.t !== "\\");
    for (let i = 0; i < lines.length;) {
      if (lines[i].t === " ") { out += `<tr>${side(lines[i])}${side({...lines[i], t: "+"}).replace("dadd", "")}</tr>`; i++; continue; }
      const dels = [], adds = [];
      while (i < lines.length && lines[i].t === "-") dels.push(lines[i++]);
      while (i < lines.length && lines[i].t === "+") adds.push(lines[i++]);
      for (let k = 0; k < Math.max(dels.length, adds.length); k++) out += `<tr>${side(dels[k])}${side(adds[k])}</tr>`;
    }
  }
  return out;
}

// `changes`: the API's per-file counts (path, added, removed, status).
export function renderDiff(root, text, changes, mode) {
  const files = parseDiff(text);
  const counts = new Map((changes || []).map(c => [c.path, c]));
  if (!files.length) { root.innerHTML = `<div class="empty">No changes in this attempt.</div>`; return; }
  const list = files.map((f, i) => {
    const c = counts.get(f.path) || {};
    return `<li><a href="#file-${i}" data-file="${i}">${esc(f.path)}</a> <span class="meta">${esc(c.status || "")}</span>
      <span class="plus">+${esc(c.added ?? f.hunks.reduce((n, h) => n + h.lines.filter(l => l.t === "+").length, 0))}</span>
      <span class="minus">−${esc(c.removed ?? f.hunks.reduce((n, h) => n + h.lines.filter(l => l.t === "-").length, 0))}</span></li>`;
  }).join("");
  root.innerHTML = `<ul class="filelist">${list}</ul>` + files.map((f, i) => {
    const lang = langOf(f.path);
    const body = f.hunks.length ? (mode === "split" ? split(f, lang) : unified(f, lang))
      : `<tr><td class="meta">${esc(f.meta.join(" · ") || "no textual change")}</td></tr>`;
    return `<section class="dfile" id="file-${i}"><h4>${esc(f.path)}</h4>
      <div class="dscroll"><table class="diff ${mode === "split" ? "split" : "unified"}">${body}</table></div></section>`;
  }).join("");
  root.querySelectorAll("a[data-file]").forEach(a => a.onclick = (e) => {
    e.preventDefault(); root.querySelector(`#file-${a.dataset.file}`).scrollIntoView({block: "start"});
  });
}
