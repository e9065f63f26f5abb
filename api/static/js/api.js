// The HTTP API as the UI uses it: the bearer token (kept in this browser only), JSON calls
// with readable errors, and server-sent events read with fetch (EventSource cannot send
// the token).
import {errText} from "./util.js";

const TOKEN_KEY = "ferry-token";
let token = localStorage.getItem(TOKEN_KEY) || "";
let onUnauthorized = () => {};

export const hasToken = () => !!token;
export function setToken(t) {
  token = t; if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
}
export function whenUnauthorized(fn) { onUnauthorized = fn; }
export const authHeaders = () => token ? {Authorization: "Bearer " + token} : {};

export class ApiError extends Error {
  constructor(message, status, body) { super(message); this.status = status; this.body = body; }
}

export async function api(method, path, body) {
  const r = await fetch(path, {method, headers: {...authHeaders(), "Content-Type": "application/json"},
                               body: body === undefined ? undefined : JSON.stringify(body)});
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401) onUnauthorized();
  if (!r.ok) throw new ApiError(errText(data, r.status), r.status, data);
  return data;
}

export async function text(path) {
  const r = await fetch(path, {headers: authHeaders()});
  if (r.status === 401) onUnauthorized();
  if (!r.ok) throw new ApiError(`HTTP ${r.status}`, r.status, null);
  return r;
}

// Follow an SSE stream; `on(event, data, id)` per event. Reconnects after a dropped
// connection with the last step id, until `signal` aborts or the server sends `end`.
export async function events(path, on, signal) {
  let lastId = null;
  for (let attempt = 0; !signal.aborted; attempt++) {
    let r;
    try {
      r = await fetch(path, {headers: {...authHeaders(), ...(lastId ? {"Last-Event-ID": lastId} : {})}, signal});
    } catch { if (signal.aborted) return; await sleep(Math.min(5000, 500 * 2 ** attempt)); continue; }
    if (r.status === 401) { onUnauthorized(); return; }
    if (!r.ok) { on("error", {message: `HTTP ${r.status}`}); return; }
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      let chunk;
      try { chunk = await reader.read(); } catch { break; }
      if (chunk.done) break;
      buf += dec.decode(chunk.value, {stream: true}).replace(/\r\n/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i); buf = buf.slice(i + 2);
        let ev = "message", data = "", id = null;
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) ev = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
          else if (line.startsWith("id:")) id = line.slice(3).trim();
        }
        if (id) lastId = id;
        if (!data) continue;
        let parsed;
        try { parsed = JSON.parse(data); } catch { continue; }
        await on(ev, parsed, id);
        if (ev === "end") return;
      }
    }
    attempt = 0;
    await sleep(500);
  }
}

export const sleep = (ms) => new Promise(r => setTimeout(r, ms));
