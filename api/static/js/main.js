// The UI's entry point: routes `/ui/...` URLs to views (deep links and the back button
// work), the navigation, and the token login.
import {$, esc} from "./util.js";
import {hasToken, setToken, whenUnauthorized} from "./api.js";
import {boardView} from "./board.js";
import {newRunView} from "./newrun.js";
import {runView} from "./run.js";
import {schedulesView, scheduleView} from "./schedules.js";
import {triggersView} from "./triggers.js";
import {targetsView} from "./targets.js";

const ROUTES = [
  [/^\/ui\/?$/, () => { navigate("/ui/runs", true); return null; }],
  [/^\/ui\/runs\/?$/, boardView],
  [/^\/ui\/new\/?$/, newRunView],
  // Run ids of scheduled Runs hold `:` and capitals (`nightly-2026-12-05T09:00:00Z`).
  [/^\/ui\/runs\/([^/]+?)(?:\/(review|output))?\/?$/, runView],
  [/^\/ui\/schedules\/?$/, schedulesView],
  [/^\/ui\/schedules\/([^/]+)\/?$/, scheduleView],
  [/^\/ui\/triggers\/?$/, triggersView],
  [/^\/ui\/targets\/?$/, targetsView],
];

let cleanup = null;

export function navigate(path, replace = false) {
  if (replace) history.replaceState({}, "", path); else history.pushState({}, "", path);
  render();
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* a view's own teardown */ } cleanup = null; }
  const main = $("#view");
  const path = location.pathname;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", path.startsWith(a.getAttribute("href")));
  }
  for (const [re, view] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    main.innerHTML = "";
    main.focus({preventScroll: true});
    const params = m.slice(1).map(p => p === undefined ? p : decodeURIComponent(p));
    cleanup = (await view(main, params, location)) || null;
    return;
  }
  main.innerHTML = `<div class="empty">No page at ${esc(path)}. <a href="/ui/runs" data-nav>Runs</a></div>`;
}

// Links inside the app navigate without a reload.
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-nav]");
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);

// ------------------------------------------------------------------- token login
function askToken() {
  const dialog = $("#login");
  $("#tokenbtn").hidden = false;
  $("#loginerr").textContent = hasToken() ? "That token was not accepted." : "";
  if (!dialog.open) { dialog.showModal(); $("#logintoken").focus(); }
}
whenUnauthorized(askToken);
$("#loginform").addEventListener("submit", () => {
  setToken($("#logintoken").value.trim());
  $("#logintoken").value = "";
  render();
});
$("#logout").addEventListener("click", () => { setToken(""); $("#login").close(); render(); });
$("#tokenbtn").addEventListener("click", askToken);
if (hasToken()) $("#tokenbtn").hidden = false;

// Keyboard: "n" opens the New Run form, "/" focuses a page's search box.
document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea, select, dialog") || e.metaKey || e.ctrlKey || e.altKey) return;
  if (e.key === "n") { e.preventDefault(); navigate("/ui/new"); }
  if (e.key === "/") { const q = $("#q"); if (q) { e.preventDefault(); q.focus(); } }
});

render();
