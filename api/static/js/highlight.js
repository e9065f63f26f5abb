// A small line-by-line syntax highlighter for diffs: comments, strings, numbers and
// keywords of the languages agents most often touch. Per line on purpose: a diff hunk
// starts anywhere, so no state is carried across lines. Output is escaped text in spans.
import {esc} from "./util.js";

const KW = {
  py: "and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield self",
  js: "async await break case catch class const continue default delete do else export extends false finally for from function if import in instanceof let new null return static super switch this throw true try typeof undefined var void while yield",
  go: "break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var nil true false",
  rs: "as async await break const continue crate else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while",
  sh: "if then else elif fi for in do done while until case esac function return local export echo set",
  c: "auto break case char const continue default do double else enum extern float for goto if int long register return short signed sizeof static struct switch typedef union unsigned void volatile while class public private protected new delete true false null",
};
const LANG = {py: "py", pyi: "py", js: "js", mjs: "js", cjs: "js", ts: "js", tsx: "js", jsx: "js",
  go: "go", rs: "rs", sh: "sh", bash: "sh", c: "c", h: "c", cc: "c", cpp: "c", hpp: "c", java: "c",
  cs: "c", kt: "c", swift: "c", json: "js", toml: "sh", yaml: "sh", yml: "sh", rb: "py"};
const HASH_COMMENTS = new Set(["py", "sh"]);
const sets = Object.fromEntries(Object.entries(KW).map(([k, v]) => [k, new Set(v.split(" "))]));

export function langOf(path) {
  const base = String(path).split("/").pop();
  if (base === "Dockerfile" || base === "Makefile") return "sh";
  return LANG[base.includes(".") ? base.split(".").pop().toLowerCase() : ""] || null;
}

const TOKEN = /(\/\/.*$|#.*$|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`(?:[^`\\]|\\.)*`?|\b\d[\d_.xXa-fA-F]*\b|[A-Za-z_][A-Za-z0-9_]*)/g;

export function highlight(line, lang) {
  if (!lang || line.length > 2000) return esc(line);
  const kws = sets[lang];
  let out = "", last = 0;
  for (const m of line.matchAll(TOKEN)) {
    const t = m[0];
    let cls = null;
    if (t.startsWith("//")) cls = lang === "py" || lang === "sh" ? null : "c";
    else if (t.startsWith("#")) cls = HASH_COMMENTS.has(lang) ? "c" : null;
    else if (/^["'`]/.test(t)) cls = "s";
    else if (/^\d/.test(t)) cls = "n";
    else if (kws.has(t)) cls = "k";
    out += esc(line.slice(last, m.index));
    out += cls ? `<span class="hl-${cls}">${esc(t)}</span>` : esc(t);
    last = m.index + t.length;
  }
  return out + esc(line.slice(last));
}
